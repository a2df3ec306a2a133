"""bce_helpers.calibration against scikit-learn, NumPy in float64 and scipy's optimiser."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from bce_helpers.calibration import (
    brier_score,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
)


def case(seed, n=500):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-logits / 2))).astype(float)
    return logits, labels


@pytest.mark.parametrize(("seed", "n_bins"), [(0, 10), (1, 5), (2, 15), (3, 1)])
def test_bins_equal_calibration_curve(seed, n_bins):
    logits, labels = case(seed)
    probs = 1 / (1 + np.exp(-logits))
    probs[:3] = [0.1, 0.5, 1.0]  # on edges: the bin below, as scikit-learn
    bins = reliability_bins(torch.tensor(probs), torch.tensor(labels), n_bins)
    observed, predicted = calibration_curve(labels, probs, n_bins=n_bins, strategy="uniform")
    np.testing.assert_allclose(bins["observed"].numpy(), observed, atol=1e-12)
    np.testing.assert_allclose(bins["predicted"].numpy(), predicted, atol=1e-12)
    assert bins["count"].sum().item() == len(probs)


def test_ece_equals_a_numpy_loop_and_is_zero_when_calibrated():
    logits, labels = case(4)
    probs = 1 / (1 + np.exp(-logits))
    gap = 0.0
    for low in np.arange(10) / 10:
        inside = (probs > low) & (probs <= low + 0.1) if low > 0 else probs <= 0.1
        if inside.any():
            gap += inside.sum() / len(probs) * abs(labels[inside].mean() - probs[inside].mean())
    ours = expected_calibration_error(torch.tensor(probs), torch.tensor(labels))
    assert ours == pytest.approx(gap, abs=1e-12)
    # predictions equal to each bin's share of positives: every gap is 0
    same = np.array([0.25] * 4 + [0.75] * 4)
    assert (
        expected_calibration_error(torch.tensor(same), torch.tensor([1, 0, 0, 0, 1, 1, 1, 0])) == 0
    )


def test_brier_equals_scikit_learn():
    logits, labels = case(5)
    probs = 1 / (1 + np.exp(-logits))
    assert brier_score(torch.tensor(probs), torch.tensor(labels)) == pytest.approx(
        brier_score_loss(labels, probs), abs=1e-12
    )


@pytest.mark.parametrize("seed", [6, 7])
def test_temperature_is_scipys_minimum(seed):
    logits, labels = case(seed)
    logits = logits.astype(np.float32).astype(np.float64)  # what the model hands over

    def nll(t):
        z = logits / t
        return np.mean(np.logaddexp(0, z) - labels * z)

    ref = minimize_scalar(nll, bounds=(0.05, 50), method="bounded", options={"xatol": 1e-10}).x
    t = fit_temperature(torch.tensor(logits, dtype=torch.float32), torch.tensor(labels))
    assert t == pytest.approx(ref, rel=1e-5)
    assert t == pytest.approx(2.0, rel=0.3)  # the labels were drawn at logits / 2


def test_bad_bins_are_refused():
    with pytest.raises(ValueError, match="n_bins=0"):
        reliability_bins(torch.tensor([0.5]), torch.tensor([1.0]), 0)
