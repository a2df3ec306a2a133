"""Calibration: reliability bins, expected calibration error, Brier score, temperature.

Binned as scikit-learn's calibration_curve(strategy="uniform") bins: n_bins equal widths
on [0, 1], a probability on an inner edge going to the bin below it. Each function moves
its inputs to the CPU, so float64 is used even where the model ran on MPS.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _flat(values: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(values).detach().cpu().double().flatten()


def reliability_bins(
    probabilities: torch.Tensor, labels: torch.Tensor, n_bins: int = 10
) -> dict[str, torch.Tensor]:
    """Per non-empty bin: its count, mean predicted probability, observed share of positives."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins={n_bins!r} is not allowed: expected an integer >= 1")
    p, y = _flat(probabilities), _flat(labels)
    inner_edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)[1:-1]
    index = torch.bucketize(p, inner_edges)  # edges[i-1] < p <= edges[i]
    count = torch.bincount(index, minlength=n_bins).double()
    predicted_sum = torch.bincount(index, weights=p, minlength=n_bins)
    positive_sum = torch.bincount(index, weights=y, minlength=n_bins)
    kept = count > 0
    return {
        "count": count[kept],
        "predicted": predicted_sum[kept] / count[kept],
        "observed": positive_sum[kept] / count[kept],
    }


def expected_calibration_error(
    probabilities: torch.Tensor, labels: torch.Tensor, n_bins: int = 10
) -> float:
    """The bins' gaps |observed - predicted|, averaged with each bin weighted by its count."""
    bins = reliability_bins(probabilities, labels, n_bins)
    weights = bins["count"] / bins["count"].sum()
    return (weights * (bins["observed"] - bins["predicted"]).abs()).sum().item()


def brier_score(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    """The mean squared gap between predicted probability and the 0/1 label."""
    return ((_flat(probabilities) - _flat(labels)) ** 2).mean().item()


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 that minimises the mean BCE of sigmoid(logits / T) against the labels."""
    z, y = _flat(logits), _flat(labels)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)  # T = exp(log_t) > 0
    optimizer = torch.optim.LBFGS(
        [log_t],
        lr=1,
        max_iter=200,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(z / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    return log_t.exp().item()
