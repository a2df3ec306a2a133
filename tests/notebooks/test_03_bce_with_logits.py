"""Notebook 03 (BCE with logits): its run at the defaults against the committed outputs and
torch, the runs at the edges of its range, and what its committed cells say against torch."""

import math

import nbformat
import pytest
import torch
import torch.nn.functional as F

from tests.checkout import find_notebook
from tests.notebooks.committed_outputs import assert_reproduced

NOTEBOOK = find_notebook("03")


@pytest.mark.notebook
def test_its_checked_outputs_are_the_committed_ones(executions):
    assert_reproduced(executions("03"))


@pytest.mark.notebook
def test_its_results(executions):
    r = executions("03").results
    torch.manual_seed(42)
    x = torch.randn(3)
    t = torch.ones(3).random_(2)
    expected = F.binary_cross_entropy_with_logits(x, t).item()
    assert r["example3_loss"] == pytest.approx(expected, abs=1e-6)
    assert 0 <= r["max_abs_diff_sigmoid_bce_vs_with_logits"] < 1e-6
    # 1 / (1 + e^-z) rounds to 1.0 in float32 once e^-z is below half an ulp of 1, 2^-24
    assert r["sigmoid_saturation_z_float32"] == pytest.approx(24 * math.log(2), abs=0.02)


@pytest.mark.notebook
def test_a_range_below_saturation_says_so(executions):
    run = executions("03", z_max=16.6, n_points=3)
    r = run.results
    assert r["sigmoid_saturation_z_float32"] == pytest.approx(24 * math.log(2), abs=1e-5)
    printed = run.printed()
    assert "z_max = 16.6 stays below 16.6355" in printed
    assert "past the saturation point" not in printed


@pytest.mark.notebook
def test_the_figure_title_names_the_threshold_not_a_grid_point(executions):
    # the grid's first saturated point is 17.0 here; the title names 24 ln 2 = 16.64
    printed = executions("03", z_max=50.0, n_points=101).printed()
    assert f"From z = {24 * math.log(2):.2f} on, as the titles say" in printed
    assert "From z = 17" not in printed, "the sentence names the threshold, not a grid point"


def test_the_autocast_cell_words_what_this_device_does():
    """The committed run (CPU) says what CPU autocast does, with torch's own numbers."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if "torch.autocast(run.device.type)" in c.source)
    printed = "".join(o.get("text", "") for o in cell.outputs)
    assert "no GPU here" not in printed
    layer = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.ones_(layer.weight)
    with torch.autocast("cpu"):
        logit = layer(torch.tensor([[10.0]]))
        via_sigmoid = torch.nn.functional.binary_cross_entropy(
            torch.sigmoid(logit), torch.zeros(1, 1)
        )
    assert logit.dtype == torch.bfloat16 and via_sigmoid.item() == 100.0
    assert f"on the CPU, autocast computes the logit in {logit.dtype}" in printed
    assert via_sigmoid.dtype == torch.float32, "CPU autocast runs binary_cross_entropy in float32"
    said = f"Sigmoid + BCELoss: runs without a word, in {via_sigmoid.dtype}, and returns 100.0000"
    assert said in printed
    assert f"(sigmoid(10) rounded to 1 in {torch.sigmoid(logit).dtype})" in printed
    exact = 10 + math.log1p(math.exp(-10))
    assert f"BCEWithLogitsLoss: {exact:.4f}, computed in torch.float32" in printed


def test_bfloat16_rounds_small_logit_losses_to_zero():
    """The committed table: at z = -6, -8 (y = 0) bfloat16 BCEWithLogitsLoss gives 0, float32
    the float64 loss to 1e-6."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if "z_small" in c.source)
    printed = "".join(o.get("text", "") for o in cell.outputs)
    for z in (-6.0, -8.0):
        exact = math.log1p(math.exp(z))
        got = []
        for dtype in (torch.bfloat16, torch.float16, torch.float32):
            logits = torch.tensor([z], dtype=dtype)
            got.append(
                torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, torch.zeros_like(logits)
                ).item()
            )
        assert got[0] == 0.0 and got[2] == pytest.approx(exact, abs=1e-6)
        assert f"{z:9g}  " + "  ".join(f"{v:9.2g}" for v in (exact, *got)) in printed
    assert f"{math.log1p(math.exp(-6.0)):.2g}" == "0.0025"


def sigmoid_path_gap(x: torch.Tensor, target: float) -> tuple[torch.Tensor, torch.Tensor]:
    """|Sigmoid + BCELoss (float32) - the exact loss (float64)| and the exact loss."""
    y = torch.full_like(x, target)
    exact = torch.nn.functional.binary_cross_entropy_with_logits(
        x.double(), y.double(), reduction="none"
    )
    via_sigmoid = torch.nn.functional.binary_cross_entropy(torch.sigmoid(x), y, reduction="none")
    return (via_sigmoid.double() - exact).abs(), exact


def test_the_sigmoid_path_agrees_within_the_bound_the_notebook_states():
    """03 compares Sigmoid + BCELoss with BCEWithLogitsLoss within 1e-6 + 2^-23 e^x plus
    1e-6 relative: a flat 1e-6 fails for y = 0 from about x = 4.1 on, which randn can draw."""
    x = torch.linspace(-16, 16, 64_001)
    for target in (0.0, 1.0):
        gap, exact = sigmoid_path_gap(x, target)
        assert (gap <= 1e-6 + 2**-23 * x.double().clamp(min=0).exp() + 1e-6 * exact).all()
    gap, exact = sigmoid_path_gap(x, 0.0)
    too_far = gap > 1e-6 + 1e-6 * exact
    assert too_far.any() and x[too_far].min().item() == pytest.approx(4.1, abs=0.1)
