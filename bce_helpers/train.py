"""Training plumbing: fast in-memory batches in the order a DataLoader would give."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn

from bce_helpers.models import MLP


def dataloader_order(n: int) -> torch.Tensor:
    """The sample order DataLoader(shuffle=True, num_workers>0) draws for one epoch.

    Creating its iterator draws a base seed for the workers from the global generator,
    then the RandomSampler draws a seed and permutes with it. Drawing the same two numbers
    here keeps the global random state, and so the order, identical to the seed's loop.
    """
    torch.empty((), dtype=torch.int64).random_()  # the workers' base seed
    seed = int(torch.empty((), dtype=torch.int64).random_().item())
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def seed_order_batches(
    inputs: torch.Tensor, targets: torch.Tensor, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of shuffled batches: one gather, then contiguous slices (no copies)."""
    order = dataloader_order(len(inputs)).to(inputs.device)
    inputs, targets = inputs[order], targets[order]
    for start in range(0, len(inputs), batch_size):
        yield inputs[start : start + batch_size], targets[start : start + batch_size]


def chance_loss(labels: torch.Tensor) -> float:
    """The BCE of the best constant prediction: the entropy of the label frequency (nats)."""
    p = labels.float().mean().item()
    return 0.0 if p in (0.0, 1.0) else -(p * math.log(p) + (1 - p) * math.log(1 - p))


def train_seed_mlp(
    epoch_batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    epochs: int,
    lr: float = 1e-4,
    in_features: int = 28 * 28 * 3,
) -> list[float]:
    """Seed 002's loop without its prints: its MLP, BCELoss and Adam, from the current
    random state; epoch_batches() yields one epoch of (inputs, targets [N, 1]).
    Returns every batch's loss."""
    mlp = MLP(in_features=in_features)
    loss_function = nn.BCELoss()
    optimizer = torch.optim.Adam(mlp.parameters(), lr=lr)
    history = []
    for _ in range(epochs):
        for inputs, targets in epoch_batches():
            optimizer.zero_grad()
            loss = loss_function(mlp(inputs), targets)
            loss.backward()
            optimizer.step()
            history.append(loss.detach())  # no .item() per batch: it would sync a GPU
    return torch.stack(history).tolist()
