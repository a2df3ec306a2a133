"""bce_helpers.exercises.thresholds_calibration (notebook 08): the cost threshold and the ECE
against scikit-learn's calibration_curve; each common mistake gets its own message."""

from __future__ import annotations

import torch

from bce_helpers.exercises import thresholds_calibration
from tests.bce_helpers.exercises.cases import grading_tests


def sklearn_ece(p, y, n_bins):
    """ECE from scikit-learn's calibration_curve bins, weighted by counts from NumPy."""
    import numpy as np
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(y.numpy(), p.numpy(), n_bins=n_bins)
    edges = np.linspace(0, 1, n_bins + 1)[1:-1]
    counts = np.bincount(np.searchsorted(edges, p.numpy()), minlength=n_bins)
    counts = counts[counts > 0]
    return float((counts / counts.sum() * np.abs(observed - predicted)).sum())


def binned(p, y, n_bins, signed=False, weighted=True, edge_up=False):
    """A learner's ECE with one choice changed."""
    index = (p * n_bins).long().clamp(max=n_bins - 1) if edge_up else None
    if index is None:
        index = torch.bucketize(p.double(), torch.linspace(0, 1, n_bins + 1).double()[1:-1])
    gaps, counts = [], []
    for b in range(n_bins):
        inside = index == b
        if inside.any():
            gaps.append((y[inside].mean() - p[inside].mean()).item())
            counts.append(inside.sum().item())
    gaps = gaps if signed else [abs(g) for g in gaps]
    if not weighted:
        return sum(gaps) / len(gaps)
    return sum(c * g for c, g in zip(counts, gaps, strict=True)) / sum(counts)


RIGHT = {
    "08.1": 0.1,  # costs 9 p and 1 - p meet at p = 1 / (1 + 9)
    "08.2": sklearn_ece,
}

MISTAKES = [
    ("08.1", 0.9, "upside down"),
    ("08.1", 0.5, "weighs a miss and a false alarm the same"),
    ("08.1", 0.111, "the odds"),
    ("08.2", lambda p, y, n: binned(p, y, n, weighted=False), "weight each bin's gap"),
    ("08.2", lambda p, y, n: binned(p, y, n, signed=True), "have signs"),
    ("08.2", lambda p, y, n: binned(p, y, n, edge_up=True), "goes to the bin below"),
]

(
    test_the_right_answer_passes,
    test_each_common_mistake_gets_its_message,
    test_every_exercise_has_a_right_answer_and_two_mistakes,
) = grading_tests(thresholds_calibration, RIGHT, MISTAKES)
