"""Training plumbing: batches in a DataLoader's order, the step, the run (its CUDA graph:
`cuda_graph`)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from bce_helpers.cuda_graph import CudaGraphStep, StepFn, synchronize


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
    the step, where a gather of the whole set per epoch is slower on the CPU."""
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


LOSSES = ("bce", "bce_with_logits", "fused_bce_with_logits")


def criterion_for(loss: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Notebook 05's criterion by name: "bce" (BCELoss on a Sigmoid's output, the guide's),
    "bce_with_logits" (BCEWithLogitsLoss on logits) or "fused_bce_with_logits" (notebook 09's)."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(map(repr, LOSSES))}, got {loss!r}")
    if loss == "fused_bce_with_logits":
        from bce_helpers.losses import fused_bce_with_logits  # imports the compiler: only if used

        return fused_bce_with_logits
    return nn.BCELoss() if loss == "bce" else nn.BCEWithLogitsLoss()


def adam(
    model: nn.Module, lr: float, cuda_graph: bool = False, fused: bool = True
) -> torch.optim.Adam:
    """The guide's optimizer, Adam at learning rate lr; capturable when a CUDA graph records it.

    fused=True: torch's fused Adam where this torch has one for the device (on the CPU from
    torch 2.4), else the plain one. It computes the same update in one kernel for all the
    parameters instead of about ten small operations per parameter tensor; it rounds
    differently, so losses may differ from the plain Adam's in their last bits."""
    if fused:
        try:
            return torch.optim.Adam(model.parameters(), lr=lr, capturable=cuda_graph, fused=True)
        except RuntimeError:  # "`fused=True` requires ... Tensors of supported devices"
            pass
    return torch.optim.Adam(model.parameters(), lr=lr, capturable=cuda_graph)


@dataclass
class Training:
    """What `train_fast` returns: every batch's loss, and where the time went."""

    losses: list[float]  # one per mini-batch, in order
    fused_adam: bool  # whether the optimizer was torch's fused Adam
    train_seconds: float  # the training steps themselves, from the first to the last loss read
    compile_seconds: float | None  # warm-up, compilation and graph recording; None if none


def train_fast(
    model: nn.Module,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    targets: torch.Tensor,
    epochs: int,
    lr: float,
    batch_size: int,
    cuda_graph: bool = False,
    warm_up: bool = False,
    on_step: Callable[[], object] | None = None,
    threads: int | None = 1,
    fused_adam: bool = True,
) -> Training:
    """Notebook 05's loop with its fast paths (its optional section): Adam on shuffled
    mini-batches for `epochs`.

    fused_adam=True uses torch's fused Adam where there is one (see `adam`); False, the
    guide's plain Adam, which trains bit for bit as the guide's own loop.

    With cuda_graph=True every full batch replays one recorded step (`CudaGraphStep`). With
    warm_up=True (for a criterion that compiles itself on first use) or cuda_graph=True, a
    few steps on batches of each shape run first and are undone (`warm_up_then_reset`); that
    time is `compile_seconds`, not `train_seconds`. `on_step` is called after every step (a
    progress bar's update, say). The losses are read from the device once, at the end.

    On the CPU the steps run on `threads` threads (torch's setting is restored afterwards;
    None keeps it): each operation of a model this small is too short to share among
    threads, and threads that wait for one another on a busy machine slow a run down many
    times. The losses are the same on any number of threads."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if len(images) != len(targets) or len(images) == 0:
        raise ValueError(
            f"images and targets must hold the same number (at least 1) of samples, got "
            f"{len(images)} and {len(targets)}"
        )
    if cuda_graph and images.device.type != "cuda":
        raise ValueError(
            f"cuda_graph=True needs images on a CUDA device, got device {images.device.type!r}"
        )
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    with _cpu_threads(threads if images.device.type == "cpu" else None):
        return _train_fast(
            model,
            criterion,
            images,
            targets,
            epochs,
            lr,
            batch_size,
            cuda_graph,
            warm_up,
            on_step,
            fused_adam,
        )


@contextmanager
def _cpu_threads(threads: int | None) -> Iterator[None]:
    """torch.set_num_threads(threads) inside the block (None: unchanged), as before after it."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train_fast(
    model: nn.Module,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    targets: torch.Tensor,
    epochs: int,
    lr: float,
    batch_size: int,
    cuda_graph: bool,
    warm_up: bool,
    on_step: Callable[[], object] | None,
    fused_adam: bool,
) -> Training:
    optimizer = adam(model, lr, cuda_graph, fused_adam)
    step = training_step(model, criterion, optimizer)
    compile_seconds = None
    if warm_up or cuda_graph:
        start = time.perf_counter()
        tail = len(images) % batch_size
        shapes = [min(batch_size, len(images))] + (
            [tail] if tail and len(images) > batch_size else []
        )
        warm_up_then_reset(step, model, optimizer, [(images[:n], targets[:n]) for n in shapes])
        if cuda_graph:
            step = CudaGraphStep(step, model, optimizer, images[:batch_size], targets[:batch_size])
        synchronize(images.device)
        compile_seconds = time.perf_counter() - start
    else:
        synchronize(images.device)
    start = time.perf_counter()
    losses = []
    for _ in range(epochs):
        for inputs, batch_targets in shuffled_batches(images, targets, batch_size):
            losses.append(step(inputs, batch_targets))
            if on_step is not None:
                on_step()
    values = torch.stack(losses).tolist()  # one transfer (and wait), after training
    fused = bool(optimizer.defaults.get("fused"))
    return Training(values, fused, time.perf_counter() - start, compile_seconds)
