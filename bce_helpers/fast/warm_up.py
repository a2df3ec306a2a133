"""Warm-up before the clock starts or a CUDA graph records: steps that are then undone."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from bce_helpers.train import Batch, StepFn


def warm_up_then_reset(
    step: StepFn,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Batch],
    steps: int = 3,
) -> None:
    """Run `steps` training steps on each batch, then put the model's weights back and the
    optimizer's state to that of a fresh Adam (all zeros).

    Warm-up makes every lazily created thing exist before the clock starts or a CUDA graph
    is recorded: optimizer state, gradients, library handles, a compiled loss's kernels for
    each batch shape. The reset is in place (tensors stay where they are, so a graph
    recorded afterwards uses them) and keeps training identical to a run without it."""
    weights = {name: t.detach().clone() for name, t in model.state_dict().items()}
    for inputs, targets in batches:
        for _ in range(steps):
            step(inputs, targets)
    model.load_state_dict(weights)  # copies into the existing tensors
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor):
                value.zero_()
