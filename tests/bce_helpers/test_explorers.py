"""The explorers of notebooks 01, 03, 04 and 08 driven through their controls: each readout
and the values each figure draws, against float64, torch's own losses (with pos_weight),
scikit-learn and known numbers; and the arguments they refuse, before drawing anything."""

from __future__ import annotations

import functools
import math
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix, precision_score, recall_score

from bce_helpers import explorers
from bce_helpers.explorers import (
    logit_explorer,
    loss_explorer,
    pos_weight_explorer,
    threshold_explorer,
)
from tests.bce_helpers.test_metrics import scored_case

# a readout's figures are printed to 4 decimals: within half a unit of the 4th of the truth
FOUR_DECIMALS = 5.01e-5


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list:
    """The figures the explorers draw, kept for the values on them (no PNG is rendered)."""
    figures = []

    def keep(fig):
        figures.append(fig)
        plt.close(fig)
        return b""

    monkeypatch.setattr(explorers, "figure_png", keep)
    return figures


def numbers(pattern: str, text: str) -> list[float]:
    """The groups of `pattern` in the readout, as floats (inf and nan included)."""
    found = re.search(pattern, text)
    assert found, text
    return [float(group) for group in found.groups()]


# ------------------------------------------------------------------------------ notebook 01


def bce64(p: float, y: float, w: float) -> float:
    """-w (y log p + (1 - y) log(1 - p)) in float64."""
    return -w * (y * math.log(p) + (1 - y) * math.log1p(-p)) if 0 < p < 1 else math.nan


def bce64_slope(p: float, y: float, w: float) -> float:
    """d/dp of bce64, by hand: -w (y / p - (1 - y) / (1 - p))."""
    return -w * (y / p - (1 - y) / (1 - p))


def check_loss_readout(text: str, y: float, w: float, p: float) -> None:
    assert f"target y = {y:.2f}, weight w = {w:.2f}, at p = {p:.2f}: " in text
    loss, slope = numbers(r"loss (\S+), d loss / d p = (\S+)\n", text)
    assert loss == pytest.approx(bce64(p, y, w), abs=FOUR_DECIMALS)
    assert slope == pytest.approx(bce64_slope(p, y, w), abs=FOUR_DECIMALS)
    # the lowest loss is BCE at p = y (torch's own, float64): w times the entropy of y
    floor = w * F.binary_cross_entropy(torch.tensor(y).double(), torch.tensor(y).double())
    assert numbers(r"lowest loss w H\(y\) = (\S+), at p = y", text) == pytest.approx(
        [floor.item()], abs=FOUR_DECIMALS
    )


def test_loss_explorer_draws_bce_and_its_slope_against_float64(drawn):
    y, w, p = 0.35, 2.0, 0.2
    explorer = loss_explorer(y=y, w=w, p=p)
    check_loss_readout(explorer.text, y, w, p)
    ax_loss, ax_slope = drawn[-1].axes
    ps = np.asarray(ax_loss.lines[0].get_xdata(), dtype=np.float64)
    assert ps.min() > 0 and ps.max() < 1 and len(ps) > 900
    expected = -w * (y * np.log(ps) + (1 - y) * np.log1p(-ps))
    np.testing.assert_allclose(ax_loss.lines[0].get_ydata(), expected, rtol=1e-12)
    slope = np.asarray(ax_slope.lines[0].get_ydata(), dtype=np.float64)
    np.testing.assert_allclose(slope, -w * (y / ps - (1 - y) / (1 - ps)), rtol=1e-10, atol=1e-12)
    # the curve passes through p = y, where the slope is 0 and the loss is lowest
    at_y = np.flatnonzero(ps == y)
    assert len(at_y) == 1 and slope[at_y[0]] == pytest.approx(0, abs=1e-12)
    assert np.argmin(np.asarray(ax_loss.lines[0].get_ydata())) == at_y[0]
    probe = ax_loss.lines[1]
    assert list(probe.get_xdata()) == [p]
    assert float(np.asarray(probe.get_ydata())[0]) == pytest.approx(bce64(p, y, w), rel=1e-12)


def test_loss_explorer_follows_its_sliders(drawn):
    explorer = loss_explorer(y=0.35, w=2.0, p=0.2)
    before = explorer.text
    explorer.controls["p"].value = 0.8  # past p = y: the loss rises again, the slope turns
    assert explorer.text != before
    check_loss_readout(explorer.text, 0.35, 2.0, 0.8)
    assert numbers(r"d loss / d p = (\S+)\n", explorer.text)[0] > 0
    explorer.controls["w"].value = 4.5
    check_loss_readout(explorer.text, 0.35, 4.5, 0.8)
    explorer.controls["y"].value = 1.0  # a hard target: the entropy, so the floor, is 0
    check_loss_readout(explorer.text, 1.0, 4.5, 0.8)
    assert "lowest loss w H(y) = 0.0000, at p = y = 1.00" in explorer.text
    assert len(drawn) == 4  # one figure per state


# ------------------------------------------------------------------------------ notebook 03


def logit_rows(text: str) -> dict[str, tuple[float, float]]:
    """Each way's loss and slope in the readout, by its name."""
    rows = re.findall(r"^at z = \S+: (.+?)\s+loss\s+(\S+)\s+d loss / d z\s+(\S+)$", text, re.M)
    return {name: (float(loss), float(slope)) for name, loss, slope in rows}


def exact(z: float, y: float) -> tuple[float, float]:
    """BCE from the logit and its slope, in float64 (torch's with-logits loss)."""
    z64, y64 = torch.tensor(z, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    return F.binary_cross_entropy_with_logits(z64, y64).item(), torch.sigmoid(z64).item() - y


def check_saturation(text: str, dtype: torch.dtype) -> None:
    """The readout's first logit where sigmoid is 1.0: just below it, sigmoid is not 1."""
    (z,) = numbers(r"sigmoid\(z\) is 1\.0 from z = (\S+)\n", text)
    assert torch.sigmoid(torch.tensor(z + 1e-4, dtype=dtype)).item() == 1.0
    assert torch.sigmoid(torch.tensor(z - 1e-4, dtype=dtype)).item() < 1.0


def test_logit_explorer_where_sigmoid_saturates_in_float32(drawn):
    explorer = logit_explorer("torch.float32", 0.0, 20.0)
    rows = logit_rows(explorer.text)
    assert list(rows) == ["BCEWithLogitsLoss", "Sigmoid + BCELoss", "textbook formula"]
    assert rows["BCEWithLogitsLoss"] == pytest.approx(exact(20.0, 0.0), abs=FOUR_DECIMALS)
    # sigmoid(20) rounds to 1.0 in float32: BCELoss clamps log(0) at -100 (torch's rule)
    # and the chain rule multiplies by sigmoid's slope there, 0; the textbook log(0) is -inf
    assert rows["Sigmoid + BCELoss"] == (100.0, 0.0)
    loss, slope = rows["textbook formula"]
    assert loss == math.inf and math.isnan(slope)
    check_saturation(explorer.text, torch.float32)
    ax_loss, ax_slope = drawn[-1].axes
    curves = {line.get_label(): line for line in ax_loss.lines}
    zs = np.asarray(curves["BCEWithLogitsLoss"].get_xdata(), dtype=np.float64)
    assert (zs.min(), zs.max()) == (-40.0, 40.0)
    z64 = torch.from_numpy(zs)
    reference = F.binary_cross_entropy_with_logits(z64, torch.zeros_like(z64), reduction="none")
    np.testing.assert_allclose(
        curves["BCEWithLogitsLoss"].get_ydata(), reference, rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(ax_slope.lines[0].get_ydata(), torch.sigmoid(z64), atol=1e-6)
    # the sigmoid path reads 100 exactly where float32's sigmoid is 1.0, and only there
    saturated = (torch.sigmoid(z64.float()) == 1.0).numpy()
    assert 0 < saturated.sum() < len(zs)
    np.testing.assert_array_equal(curves["Sigmoid + BCELoss"].get_ydata() == 100, saturated)


def test_logit_explorer_follows_its_controls(drawn):
    explorer = logit_explorer()  # float32, y = 0, z = 10
    rows = logit_rows(explorer.text)
    assert rows["BCEWithLogitsLoss"] == pytest.approx(exact(10.0, 0.0), abs=FOUR_DECIMALS)
    # float32's sigmoid(10) is rounded: the loss is that of the rounded probability (float64)
    rounded = torch.sigmoid(torch.tensor(10.0)).double()
    via_sigmoid = F.binary_cross_entropy(rounded, torch.tensor(0.0).double()).item()
    assert abs(via_sigmoid - exact(10.0, 0.0)[0]) > 3e-4  # apart in the readout's digits
    assert rows["Sigmoid + BCELoss"][0] == pytest.approx(via_sigmoid, abs=FOUR_DECIMALS)
    explorer.controls["dtype"].value = "torch.float64"
    assert explorer.text.startswith("torch.float64, target y = 0")
    check_saturation(explorer.text, torch.float64)
    for loss_and_slope in logit_rows(explorer.text).values():
        assert loss_and_slope == pytest.approx(exact(10.0, 0.0), abs=FOUR_DECIMALS)
    explorer.controls["dtype"].value = "torch.float32"
    explorer.controls["y"].value = 1.0
    explorer.controls["z"].value = -20.0  # y = 1 far left: sigmoid(-20) is representable
    rows = logit_rows(explorer.text)
    assert "at z = -20: " in explorer.text
    assert rows["BCEWithLogitsLoss"] == pytest.approx(exact(-20.0, 1.0), abs=FOUR_DECIMALS)
    assert rows["Sigmoid + BCELoss"] == pytest.approx(exact(-20.0, 1.0), abs=FOUR_DECIMALS)
    assert rows["BCEWithLogitsLoss"][1] == pytest.approx(-1.0, abs=FOUR_DECIMALS)
    assert len(drawn) == 5


# --------------------------------------------------------------------- the sliders' ranges


def slider_range(explorer, name: str) -> tuple[float, float]:
    """The range of an explorer's slider, as the widget holds it."""
    return explorer.controls[name].min, explorer.controls[name].max


@pytest.mark.parametrize(
    ("make", "name", "value"),
    [
        (loss_explorer, "p", 0.0),
        (loss_explorer, "p", 1.0),
        (loss_explorer, "p", math.nan),
        (loss_explorer, "y", 1.5),
        (loss_explorer, "y", -0.1),
        (loss_explorer, "w", 0.25),
        (loss_explorer, "w", 6.0),
        (logit_explorer, "z", 100.0),
        (logit_explorer, "z", -40.5),
    ],
)
def test_a_value_outside_its_sliders_range_is_refused_before_drawing(drawn, make, name, value):
    low, high = slider_range(make(), name)  # the range of the slider, from the widget itself
    drawn.clear()
    message = f"{name}={value!r} is not allowed: its slider runs from {low:g} to {high:g}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make(**{name: value})
    assert drawn == []


@pytest.mark.parametrize(
    ("name", "value"), [("dtype", "torch.int64"), ("dtype", "float32"), ("y", 0.5), ("y", -1.0)]
)
def test_a_choice_its_dropdown_does_not_offer_is_refused_before_drawing(drawn, name, value):
    options = logit_explorer().controls[name].options  # the dropdown's own options
    drawn.clear()
    message = f"{name}={value!r} is not allowed: expected one of {list(options)!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        logit_explorer(**{name: value})
    assert drawn == []


def test_the_ends_of_the_sliders_ranges_are_shown_as_given(drawn):
    explorer = loss_explorer(y=0.0, w=5.0, p=0.99)
    assert (slider_range(explorer, "w"), slider_range(explorer, "p")) == ((0.5, 5.0), (0.01, 0.99))
    check_loss_readout(explorer.text, 0.0, 5.0, 0.99)
    explorer = loss_explorer(y=1.0, w=0.5, p=0.01)
    check_loss_readout(explorer.text, 1.0, 0.5, 0.01)
    for z in (-40.0, 40.0):
        assert f"at z = {z:g}: " in logit_explorer(z=z).text


# ------------------------------------------------------------------------------ notebook 04


def imbalanced_case(n: int = 400) -> tuple[torch.Tensor, torch.Tensor, float]:
    """An unweighted model's logits on n labels, about a quarter positive; no logit is
    above 1.2 (so none passes log 4 = 1.39); and the share of positives."""
    g = torch.Generator().manual_seed(4)
    labels = (torch.rand(n, generator=g) < 0.25).float()
    logits = (2.0 * labels - 1.2 + 0.8 * torch.randn(n, generator=g)).clamp(max=1.2)
    return logits, labels, labels.mean().item()


@functools.cache
def best_constant_logit(w: float) -> float:
    """The constant logit that minimises torch's BCEWithLogitsLoss(pos_weight=w) on the
    labels of imbalanced_case, by Newton's method on its autograd derivatives (the loss is
    convex in it)."""
    y, pos_weight = imbalanced_case()[1].double(), torch.tensor(w, dtype=torch.float64)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    for _ in range(50):
        loss = F.binary_cross_entropy_with_logits(b.expand_as(y), y, pos_weight=pos_weight)
        (slope,) = torch.autograd.grad(loss, b, create_graph=True)
        (curvature,) = torch.autograd.grad(slope, b)
        step = (slope / curvature).detach()
        b = (b - step).detach().requires_grad_()
        if abs(step.item()) < 1e-12:
            return b.item()
    raise AssertionError(f"Newton's method did not settle for w = {w}")


def check_pos_weight_readout(text: str, w: float) -> None:
    """The readout of pos_weight_explorer on imbalanced_case at w, against torch's loss."""
    logits, labels, p = imbalanced_case()
    best = best_constant_logit(w)
    shift = best - best_constant_logit(1.0)
    assert f"pos_weight w = {w:.2f}, share of positives p = {p:.3f}\n" in text
    b, sigmoid_b = numbers(r"b\* = log\(w p / \(1 - p\)\) = (\S+) \(sigmoid (\S+)\)", text)
    assert b == pytest.approx(best, abs=FOUR_DECIMALS)
    assert sigmoid_b == pytest.approx(1 / (1 + math.exp(-best)), abs=FOUR_DECIMALS)
    # w moves the optimal constant logit by log w: the logits shifted as much
    assert numbers(r"\nlog w = (\S+) added", text) == pytest.approx([shift], abs=FOUR_DECIMALS)
    said = (logits.double() + shift > 0).numpy()
    recall = recall_score(labels.numpy(), said)
    assert numbers(r"recall (\S+)$", text) == pytest.approx([recall], abs=5.01e-4)
    if said.any():
        precision = precision_score(labels.numpy(), said)
        assert numbers(r"precision (\S+),", text) == pytest.approx([precision], abs=5.01e-4)
    else:
        assert "precision undefined, recall 0.000" in text


def test_pos_weight_explorer_draws_torchs_weighted_loss_and_its_optimum(drawn):
    logits, labels, p = imbalanced_case()
    explorer = pos_weight_explorer(logits, labels, p, w=3.0)
    check_pos_weight_readout(explorer.text, 3.0)
    ax_loss, ax_pr = drawn[-1].axes
    curves = {line.get_label(): line for line in ax_loss.lines}
    b = torch.as_tensor(np.asarray(curves["w = 3"].get_xdata()), dtype=torch.float64)
    ones, zeros = torch.ones_like(b), torch.zeros_like(b)
    for w in (1.0, 3.0):
        # the expected loss of a constant logit b over a population with a share p of positives
        positive = F.binary_cross_entropy_with_logits(
            b, ones, pos_weight=torch.tensor(w), reduction="none"
        )
        negative = F.binary_cross_entropy_with_logits(b, zeros, reduction="none")
        expected = p * positive + (1 - p) * negative
        np.testing.assert_allclose(curves[f"w = {w:g}"].get_ydata(), expected, rtol=1e-5)
    optimum = [line for label, line in curves.items() if label.startswith("b* = ")]
    assert len(optimum) == 1
    assert optimum[0].get_xdata()[0] == pytest.approx(best_constant_logit(3.0), abs=1e-6)
    shift = best_constant_logit(3.0) - best_constant_logit(1.0)
    said = (logits.double() + shift > 0).numpy()
    point = {line.get_label(): line for line in ax_pr.lines}["w = 3"]
    assert point.get_xdata()[0] == pytest.approx(recall_score(labels.numpy(), said))
    assert point.get_ydata()[0] == pytest.approx(precision_score(labels.numpy(), said))


def test_pos_weight_explorer_follows_its_slider(drawn):
    logits, labels, p = imbalanced_case()
    explorer = pos_weight_explorer(logits, labels, p, w=3.0)
    before = explorer.text
    explorer.controls["w"].value = 1.0  # unweighted: b* is the log-odds of p, no shift
    assert explorer.text != before
    check_pos_weight_readout(explorer.text, 1.0)
    assert numbers(r"= (\S+) \(sigmoid", explorer.text)[0] == pytest.approx(
        math.log(p / (1 - p)), abs=FOUR_DECIMALS
    )
    explorer.controls["w"].value = 0.25  # every logit is below log 4: nothing said positive
    check_pos_weight_readout(explorer.text, 0.25)
    assert "precision undefined, recall 0.000" in explorer.text
    assert len(drawn) == 3


@pytest.mark.parametrize("p", [0.0, 1.0, -0.2, 1.5])
def test_pos_weight_explorer_refuses_a_share_outside_0_1(drawn, p):
    logits, labels, _ = imbalanced_case(8)
    with pytest.raises(ValueError, match=rf"^p={p!r} is not allowed: .* in \(0, 1\)$"):
        pos_weight_explorer(logits, labels, p)
    assert drawn == []


@pytest.mark.parametrize("w", [0.0, -1.0, math.inf, math.nan])
def test_pos_weight_explorer_refuses_a_weight_that_is_not_finite_and_positive(drawn, w):
    logits, labels, p = imbalanced_case(8)
    message = f"w={w!r} is not allowed: pos_weight must be a finite number above 0"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        pos_weight_explorer(logits, labels, p, w=w)
    assert drawn == []


def test_pos_weight_explorer_takes_a_weight_past_its_sliders_usual_range(drawn):
    logits, labels, p = imbalanced_case()
    for w in (0.1, 40.0):  # the slider stretches to reach it, so the readout is w's own
        explorer = pos_weight_explorer(logits, labels, p, w=w)
        assert explorer.controls["w"].value == w
        check_pos_weight_readout(explorer.text, w)


# ------------------------------------------------------------------------------ notebook 08


@pytest.mark.parametrize("threshold", [0.1, 0.35, 0.5, 0.9])
def test_the_readout_counts_as_scikit_learn(threshold):
    probs, labels = scored_case()
    said = (probs >= threshold).numpy()
    tn, fp, fn, tp = confusion_matrix(labels.numpy(), said, labels=[0, 1]).ravel()
    explorer = threshold_explorer(probs, labels, threshold)
    counts = f"true positives {tp}, false positives {fp}, false negatives {fn}, true negatives {tn}"
    assert counts in explorer.text
    precision = precision_score(labels, said, zero_division=0)
    assert f"precision {precision:.3f}, recall {recall_score(labels, said):.3f}" in explorer.text
    assert explorer.png.startswith(b"\x89PNG")


def test_moving_the_slider_redraws():
    labels = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0])
    probs = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.6])
    explorer = threshold_explorer(probs, labels, 0.5)
    before = explorer.png
    explorer.controls["threshold"].value = 0.3
    assert "threshold t = 0.30" in explorer.text
    assert "true positives 3, false positives 1" in explorer.text
    assert explorer.png != before


@pytest.mark.parametrize("threshold", [0.0, 1.0, 1.5])
def test_a_threshold_outside_its_sliders_range_is_refused(drawn, threshold):
    labels = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0])
    probs = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.6])
    low, high = slider_range(threshold_explorer(probs, labels), "threshold")
    drawn.clear()
    message = f"threshold={threshold!r} is not allowed: its slider runs from {low:g} to {high:g}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        threshold_explorer(probs, labels, threshold)
    assert drawn == []
