"""Notebook 05's loop with its fast paths: fused Adam, warm-up, CUDA-graph replay, and the
training threads on the CPU."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from bce_helpers.fast.cuda_graph import CudaGraphStep, synchronize
from bce_helpers.fast.warm_up import warm_up_then_reset
from bce_helpers.train import shuffled_batches, training_step


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
    fused_adam: bool  # whether the optimizer is torch's fused Adam
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
