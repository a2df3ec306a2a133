"""Data the notebooks train on, made in memory from a seed: nothing is downloaded."""

from __future__ import annotations

import torch


def imbalanced_blobs(
    n_samples: int,
    positive_fraction: float,
    separation: float = 2.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two unit-variance 2-D Gaussian classes, a given fraction positive, shuffled.

    Returns float32 features [N, 2] and float32 labels [N, 1]. Exactly
    round(n_samples * positive_fraction) labels are 1. With equal covariances, the true
    log-odds are linear in the features, so logistic regression is the right model.
    """
    if not 0 < positive_fraction < 1:
        raise ValueError(f"positive_fraction must be in (0, 1), got {positive_fraction!r}")
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2, got {n_samples!r}")
    g = torch.Generator().manual_seed(seed)
    n_pos = round(n_samples * positive_fraction)
    labels = torch.zeros(n_samples, 1)
    labels[:n_pos] = 1.0
    centre = torch.tensor([separation / 2, 0.0])
    features = torch.randn(n_samples, 2, generator=g) + torch.where(labels == 1, centre, -centre)
    order = torch.randperm(n_samples, generator=g)
    return features[order].to(device), labels[order].to(device)
