"""Notebooks 03 and 06: the saturation search, their parameter rules, and runs at the edges;
notebook 05 on CUDA with the graph."""

import math

import nbformat
import pytest
import torch

from bce_helpers.params import check_params
from bce_helpers.saturation import first_saturating_logit

BASE_06 = dict(
    seed=42,
    device="auto",
    results_path=None,
    framework="torch",
    n_samples=1000,
    noise=0.1,
    epochs=300,
    batch_size=32,
    lr=1e-3,
)


def test_float32_saturates_where_one_plus_exp_rounds_to_one():
    z = first_saturating_logit(torch.float32)
    # 1 + e^-z rounds to 1 once e^-z < 2^-24: z > 24 ln 2 (not the 25 ln 2 of correct rounding)
    assert z == pytest.approx(24 * math.log(2), abs=1e-5)
    here = torch.tensor(z)
    below = torch.nextafter(here, torch.tensor(0.0))
    assert torch.sigmoid(here).item() == 1.0 and torch.sigmoid(below).item() < 1.0


@pytest.mark.parametrize(
    ("dtype", "expected", "threshold"),
    # the first representable logit past ln(4 / eps - 1): float16 spacing 2^-7 near 8,
    # bfloat16 spacing 2^-5 near 6
    [(torch.float16, 8.3203125, math.log(2**12 - 1)), (torch.bfloat16, 6.25, math.log(2**9 - 1))],
)
def test_half_types_saturate_at_the_nearest_float(dtype, expected, threshold):
    assert first_saturating_logit(dtype) == expected
    spacing = torch.finfo(dtype).eps * 2 ** math.floor(math.log2(expected))
    assert expected - spacing < threshold <= expected


def test_float64_saturation():
    assert first_saturating_logit(torch.float64) == pytest.approx(53 * math.log(2), rel=1e-14)


@pytest.mark.parametrize("bad", [torch.int32, "float32", None])
def test_first_saturating_logit_refuses_non_float_dtypes(bad):
    with pytest.raises(ValueError, match=r"dtype must be a floating-point torch.dtype, got"):
        first_saturating_logit(bad)


def test_06_refuses_more_than_10000_optimizer_steps():
    ok = check_params("06_circles", {**BASE_06, "epochs": 625})  # 625 * 16 = 10,000 steps
    assert ok["epochs"] == 625
    with pytest.raises(ValueError) as err:
        check_params("06_circles", {**BASE_06, "epochs": 626})
    message = str(err.value)
    assert "epochs=626, n_samples=1000, batch_size=32 are not allowed together" in message
    assert "optimizer steps, must be at most 10,000" in message


def test_06_refuses_more_than_2e7_points_through_the_model():
    big = {**BASE_06, "n_samples": 1_000_000, "batch_size": 1_000_000}
    assert check_params("06_circles", {**big, "epochs": 20})["epochs"] == 20
    with pytest.raises(ValueError, match=r"epochs=21, n_samples=1000000 are not allowed"):
        check_params("06_circles", {**big, "epochs": 21})


def _outputs(path) -> str:
    nb = nbformat.read(path, as_version=4)
    texts = [o.get("text", "") for c in nb.cells for o in c.get("outputs", [])]
    return "".join(texts)


@pytest.mark.notebook
def test_03_range_below_saturation_says_so(run_notebook, tmp_path):
    r = run_notebook("03", z_max=16.6, n_points=3)
    assert r["sigmoid_saturation_z_float32"] == pytest.approx(24 * math.log(2), abs=1e-5)
    printed = _outputs(tmp_path / "03_bce_with_logits.ipynb")
    assert "z_max = 16.6 stays below 16.6355" in printed
    assert "past the saturation point" not in printed


@pytest.mark.notebook
def test_06_tiny_data_huge_batch_and_lr_run_to_the_end(run_notebook, tmp_path):
    r = run_notebook("06", n_samples=10, noise=10.0, batch_size=1_000_000, lr=10.0, epochs=5)
    # 5 test points: the final model's test accuracy is val_accuracy of the last epoch
    assert r["test_accuracy"] == pytest.approx(r["history"]["val_accuracy"][-1], abs=1e-6)
    assert r["test_accuracy"] * 5 == pytest.approx(round(r["test_accuracy"] * 5))
    printed = _outputs(tmp_path / "06_circles.ipynb")
    assert "not the guide's settings: no accuracy is claimed" in printed


@pytest.mark.notebook
def test_03_figure_title_names_the_threshold_not_a_grid_point(run_notebook, tmp_path):
    # the grid's first saturated point is 17.0 here; the title names 24 ln 2 = 16.64
    run_notebook("03", z_max=50.0, n_points=101)
    printed = _outputs(tmp_path / "03_bce_with_logits.ipynb")
    assert f"From z = {24 * math.log(2):.2f} on, as the titles say" in printed
    assert "From z = 17" not in printed, "the sentence names the threshold, not a grid point"


def test_03_autocast_cell_words_what_this_device_does():
    """The committed run (CPU) says what CPU autocast does, with torch's own numbers."""
    from tests.checkout import find_notebook

    nb = nbformat.read(find_notebook("03"), as_version=4)
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


def test_03_bfloat16_rounds_small_logit_losses_to_zero():
    """The committed table: at z = -6, -8 (y = 0) bfloat16 BCEWithLogitsLoss gives 0, float32
    the float64 loss to 1e-6."""
    from tests.checkout import find_notebook

    nb = nbformat.read(find_notebook("03"), as_version=4)
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


@pytest.mark.notebook
@pytest.mark.parametrize("seed", [1, 38])
def test_04_ten_positives_and_long_training_run_to_the_end(run_notebook, tmp_path, seed):
    """Accepted sets that stopped on `precisions[-1] < precisions[0]` (issue 24, item 2)."""
    r = run_notebook(
        "04", n_samples=100, positive_fraction=0.1, steps=3000, seed=seed, device="cpu"
    )
    # the constant model's optimum holds on any data: log(w p / (1 - p)) with w = 3, p = 0.1
    assert r["optimal_logit_theory"] == pytest.approx(math.log(3 * 0.1 / 0.9), abs=1e-6)
    assert r["optimal_logit_measured"] == pytest.approx(r["optimal_logit_theory"], abs=1e-3)
    printed = _outputs(tmp_path / "04_pos_weight.ipynb")
    assert "only 10 positives in the test set: too few to check the shift here" in printed
    table = printed.split("    w   precision     recall\n", 1)[1].splitlines()[:8]
    precisions = [row.split()[1] for row in table]
    assert "0.000" not in precisions, "no predicted positive is an undefined precision, not 0"
    if seed == 1:  # the w = 0.25 model predicts no positive on this test set
        assert precisions[0] == "undefined"
        assert "precision is undefined at an end of the range" in printed


@pytest.mark.notebook
@pytest.mark.parametrize("w", [1.03, 0.97])
def test_04_pos_weight_near_one_runs_to_the_end(run_notebook, tmp_path, w):
    """Near w = 1 the shift moves the mean probability by less than the test set's noise:
    the notebook prints both means instead of stopping on "closer after"."""
    r = run_notebook("04", pos_weight=w, n_samples=1000, steps=300, seed=2, device="cpu")
    assert r["optimal_logit_theory"] == pytest.approx(math.log(w * 0.2 / 0.8), abs=1e-6)
    assert r["optimal_logit_measured"] == pytest.approx(r["optimal_logit_theory"], abs=1e-3)
    printed = _outputs(tmp_path / "04_pos_weight.ipynb")
    # both models at their optimum with 200 test positives: the shift is checked, the verdict
    # on which mean is closer is left out
    assert "the shift matches log w within the tolerance checked" in printed
    assert "too little to say which" in printed
    # 1.03 / 0.97 moves the mean probability of 0.2 by about p (1 - p) |log w| = 0.005
    assert abs(r["calibrated_mean_probability"] - 0.2) < 0.03


def sigmoid_path_gap(x: torch.Tensor, target: float) -> tuple[torch.Tensor, torch.Tensor]:
    """|Sigmoid + BCELoss (float32) - the exact loss (float64)| and the exact loss."""
    y = torch.full_like(x, target)
    exact = torch.nn.functional.binary_cross_entropy_with_logits(
        x.double(), y.double(), reduction="none"
    )
    via_sigmoid = torch.nn.functional.binary_cross_entropy(torch.sigmoid(x), y, reduction="none")
    return (via_sigmoid.double() - exact).abs(), exact


def test_03_sigmoid_path_agrees_within_the_bound_the_notebook_states():
    """03 compares Sigmoid + BCELoss with BCEWithLogitsLoss within 1e-6 + 2^-23 e^x plus
    1e-6 relative: a flat 1e-6 fails for y = 0 from about x = 4.1 on, which randn can draw."""
    x = torch.linspace(-16, 16, 64_001)
    for target in (0.0, 1.0):
        gap, exact = sigmoid_path_gap(x, target)
        assert (gap <= 1e-6 + 2**-23 * x.double().clamp(min=0).exp() + 1e-6 * exact).all()
    gap, exact = sigmoid_path_gap(x, 0.0)
    too_far = gap > 1e-6 + 1e-6 * exact
    assert too_far.any() and x[too_far].min().item() == pytest.approx(4.1, abs=0.1)
