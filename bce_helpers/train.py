"""Training, as the lessons write it: batches in a DataLoader's order, the chance loss, one
step, the criterion by name. The fast path (fused Adam, warm-up, CUDA-graph replay) is
`bce_helpers.fast.training`."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch import nn


def dataloader_order(n: int) -> torch.Tensor:
    """The sample order DataLoader(shuffle=True, num_workers>0) draws for one epoch.

    Creating its iterator draws a base seed for the workers from the global generator,
    then the RandomSampler draws a seed and permutes with it. Drawing the same two numbers
    here keeps the global random state, and so the order, identical to the guide's loop.
    """
    torch.empty((), dtype=torch.int64).random_()  # the workers' base seed
    seed = int(torch.empty((), dtype=torch.int64).random_().item())
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def shuffled_batches(
    inputs: torch.Tensor, targets: torch.Tensor, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of shuffled batches, in the order of a shuffling DataLoader (with workers).

    Each batch is gathered by index when it is used: a batch-sized copy, still in cache for
    the step, where a gather of the whole set per epoch would copy it all through memory
    first."""
    order = dataloader_order(len(inputs)).to(inputs.device)
    for start in range(0, len(inputs), batch_size):
        batch = order[start : start + batch_size]
        yield inputs.index_select(0, batch), targets.index_select(0, batch)


def chance_loss(labels: torch.Tensor) -> float:
    """The BCE of the best constant prediction: the entropy of the label frequency (nats)."""
    p = labels.float().mean().item()
    return 0.0 if p in (0.0, 1.0) else -(p * math.log(p) + (1 - p) * math.log(1 - p))


def newton_step_length(
    model: nn.Module, loss_fn: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor
) -> float:
    """How far one Newton step on loss_fn(model(inputs)) would move the parameters.

    Near 0 once training has reached the optimum, whatever the scale of the loss: the
    gradient divided by the curvature (inf where the loss is flat in some direction). For
    the small models of notebook 04 (a few parameters), with the full Hessian."""
    from torch.func import functional_call

    named = dict(model.named_parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in named.values()])

    def loss_of(vector: torch.Tensor) -> torch.Tensor:
        chunks = vector.split([p.numel() for p in named.values()])
        params = {n: c.view_as(p) for (n, p), c in zip(named.items(), chunks, strict=True)}
        return loss_fn(functional_call(model, params, (inputs,)))

    gradient = torch.autograd.functional.jacobian(loss_of, flat).detach().cpu().double()
    hessian = torch.autograd.functional.hessian(loss_of, flat).detach().cpu().double()
    if torch.linalg.eigvalsh(hessian).min() <= 0:  # flat (a saturated sigmoid): no optimum here
        return math.inf
    return torch.linalg.solve(hessian, gradient).norm().item()


Batch = tuple[torch.Tensor, torch.Tensor]
StepFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def training_step(
    model: nn.Module,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
) -> StepFn:
    """The guide's step as a function of one batch: zero_grad, forward, loss, backward,
    optimizer.step. It returns the loss as a tensor: .item() would wait for a GPU."""

    def step(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad()
        loss = criterion(model(inputs), targets)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


LOSSES = ("bce", "bce_with_logits", "fused_bce_with_logits")


def criterion_for(loss: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Notebook 05's criterion by name: "bce" (BCELoss on a Sigmoid's output, the guide's),
    "bce_with_logits" (BCEWithLogitsLoss on logits) or "fused_bce_with_logits" (notebook 09's)."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(map(repr, LOSSES))}, got {loss!r}")
    if loss == "fused_bce_with_logits":
        from bce_helpers.fast.fused import (
            fused_bce_with_logits,  # imports the compiler: only if used
        )

        return fused_bce_with_logits
    return nn.BCELoss() if loss == "bce" else nn.BCEWithLogitsLoss()
