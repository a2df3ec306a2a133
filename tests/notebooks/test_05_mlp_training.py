"""Notebook 05 (an MLP trained with BCE): its run at the defaults against the committed
outputs and chance, a learnable run with the fused loss and without, and the parameter sets
that once stopped it, their numbers against the guide's own loop (a DataLoader, plain
Adam) run here."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from bce_helpers.data import train_test_images
from bce_helpers.models import MLP
from tests.notebooks.committed_outputs import assert_reproduced

pytestmark = pytest.mark.notebook


def guide_history(params: dict) -> list[float]:
    """Each epoch's mean mini-batch loss of the guide's loop on the notebook's data: a
    shuffling DataLoader, nn.BCELoss on the MLP's Sigmoid, torch's plain Adam."""
    shape = (3, params["image_size"], params["image_size"])
    n_test = round(params["n_samples"] * params.get("test_fraction", 0.2))
    images, targets, _, _ = train_test_images(
        params["dataset"], params["n_samples"], n_test, shape, seed=params["seed"]
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the notebook trains
    try:
        torch.manual_seed(params["seed"])
        mlp = MLP(in_features=math.prod(shape))
        loader = DataLoader(
            TensorDataset(images, targets), batch_size=params["batch_size"], shuffle=True
        )
        optimizer = torch.optim.Adam(mlp.parameters(), lr=params["lr"])
        history = []
        for _ in range(params["epochs"]):
            losses = []
            for inputs, labels in loader:
                optimizer.zero_grad()
                loss = torch.nn.BCELoss()(mlp(inputs), labels)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            history.append(sum(losses) / len(losses))
    finally:
        torch.set_num_threads(threads)
    return history


def test_its_checked_outputs_are_the_committed_ones(executions):
    assert_reproduced(executions("05"))


def test_fakedata_stays_at_chance_and_random_labels_are_memorised(executions):
    r = executions("05").results  # the defaults: FakeData's random labels, 3 epochs
    assert r["chance_loss"] == pytest.approx(math.log(2), abs=0.01)
    assert len(r["history"]) == 3, "one mean loss per epoch"
    assert abs(r["final_train_loss"] - math.log(2)) < 0.05
    assert r["test_loss"] > math.log(2) - 0.05 and abs(r["test_accuracy"] - 0.5) < 0.25
    # random labels can be memorised: training loss far below ln 2, held out at chance
    assert r["memorised_train_loss"] < 0.1
    assert abs(r["memorised_test_accuracy"] - 0.5) < 4 * 0.5 / 512**0.5


# learnable images, small and short: the fused loss against BCEWithLogitsLoss
SMALL_LEARNABLE = dict(dataset="learnable", n_samples=1000, epochs=2, lr=2e-3)


def test_learnable_images_are_learned(executions):
    r = executions("05", loss="bce_with_logits", **SMALL_LEARNABLE).results
    assert r["final_train_loss"] < math.log(2) - 0.2
    assert r["history"][-1] < r["history"][0]
    assert r["test_accuracy"] > 0.8


def test_the_fused_loss_trains_like_bce_with_logits(executions):
    fused = executions("05", loss="fused_bce_with_logits", **SMALL_LEARNABLE).results
    plain = executions("05", loss="bce_with_logits", **SMALL_LEARNABLE).results
    assert fused["history"] == pytest.approx(plain["history"], abs=1e-4)
    # the fused loss compiles before the clock starts, and says how long that took
    assert fused["compile_seconds"] > 0 and "compile_seconds" not in plain
    assert fused["test_accuracy"] == pytest.approx(plain["test_accuracy"], abs=0.01)


# issue 24, item 1: a long run at a large learning rate, where fused Adam's rounding grows
LONG_RUN = dict(
    n_samples=256,
    image_size=8,
    batch_size=16,
    epochs=100,
    lr=0.01,
    dataset="fakedata",
    loss="bce",
    seed=42,
)
# issue 24, item 3: learnable images, 10 held-out images, a short run at a small rate
TEN_HELD_OUT = dict(
    seed=6,
    n_samples=200,
    image_size=8,
    batch_size=1,
    epochs=1,
    lr=2.5e-4,
    test_fraction=0.05,
    dataset="learnable",
)


def test_a_long_run_measures_the_fast_paths_gap_and_runs_to_the_end(executions):
    run = executions("05", **LONG_RUN)
    r = run.results
    assert r["history"] == pytest.approx(guide_history(LONG_RUN), abs=1e-6)
    out = run.printed()
    # the held-out loss is printed, and the verdict claims no more than the one-sided check
    assert f"held-out loss {r['test_loss']:.3f}, coin-flip expectation" in out
    assert "held-out accuracy near 50%, held-out loss not below chance" in out
    # the memoriser's held-out BCE sits above ln 2: confidently wrong on half the labels
    assert r["memorised_train_loss"] < 0.1 < math.log(2) < r["memorised_test_loss"]
    spread = re.search(r"largest gap between the two runs' losses \(their spread: ([\d.]+)\)", out)
    if r["fast_max_gap"] == 0:
        assert f"the same {100 * 16} losses, bit for bit" in out
    else:
        assert spread and float(spread[1]) == pytest.approx(r["loss_spread"], abs=5e-4), out
        table = out[spread.end() :].split("spread: here", 1)[0]
        gaps = re.findall(r"^ +(\d+) +([\d.]+e[+-]\d+)$", table, re.M)
        assert [int(n) for n, _ in gaps] == [1, 10, 100, 1000, 1600]
        assert float(gaps[-1][1]) == pytest.approx(r["fast_max_gap"], rel=0.05)
        assert [float(g) for _, g in gaps] == sorted(float(g) for _, g in gaps)
        verdict = (
            "rounding stayed rounding"
            if r["fast_max_gap"] < 0.01 * r["loss_spread"]
            else "different runs"
        )
        assert verdict in out


def test_ten_held_out_images_are_reported_not_asserted(executions):
    run = executions("05", **TEN_HELD_OUT)
    r = run.results
    assert r["history"] == pytest.approx(guide_history(TEN_HELD_OUT), abs=1e-6)
    assert r["learnable_test_loss"] == r["test_loss"]  # the chosen dataset is the learnable one
    out = run.printed()
    assert "this run is too small or too short for the lesson to promise it" in out


def test_the_learnable_claim_holds_at_the_edge_of_its_regime(executions):
    """100 held-out images, the fewest steps x learning rate the regime allows (0.05), one
    image per batch; seed 12 was the worst of 30 seeds tried here."""
    params = {**TEN_HELD_OUT, "seed": 12, "test_fraction": 0.5}
    run = executions("05", **params)
    r = run.results
    below = (math.log(2) - r["learnable_test_loss"]) / r["learnable_test_loss_error"]
    assert below > 3
    out = run.printed()
    assert "the held-out loss is more than 3 standard errors below ln 2\n" in out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("loss", ["bce", "fused_bce_with_logits"])
def test_the_cuda_graph_path_measures_itself_against_the_lessons_loop(executions, loss):
    run = executions("05", device="cuda", cuda_graph=True, loss=loss, n_samples=2000, epochs=1)
    r = run.results
    assert r["compile_seconds"] > 0 and r["train_seconds"] > 0 and r["fast_train_seconds"] > 0
    out = run.printed()
    assert "fused Adam and a CUDA graph" in out
    assert "before the fast path's clock: warm-up, compilation, recording" in out
    same = r"the same \d+ losses, bit for bit"
    assert re.search(same, out) or "largest gap between the two runs' losses" in out, out
