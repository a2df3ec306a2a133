"""Timing for the at-scale notebook and benchmarks: seconds, bytes moved, GB/s."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F

from bce_helpers.losses import bce_with_logits, fused_bce_with_logits

# The least memory traffic per element, in units of the element size: the forward reads
# input and target; the backward reads them again and writes the gradient.
ELEMENT_READS_WRITES = {"forward": 2, "forward+backward": 5}
METHODS: dict[str, Callable] = {
    "eager torch": F.binary_cross_entropy_with_logits,
    "eager from scratch": bce_with_logits,
    "fused": fused_bce_with_logits,
}


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so the clock measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(
    fns: Mapping[str, Callable[[], object]], repeats: int, device: torch.device
) -> dict[str, float]:
    """Fastest seconds of each fn over `repeats` rounds, after one warm-up call each.

    In each round the fns take turns, so a slow spell of a shared machine falls on all of
    them alike rather than on whichever ran then; and the minimum, as timeit advises,
    because slower calls measure the neighbours, not the code."""
    for fn in fns.values():
        fn()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: min(ts) for name, ts in times.items()}


def warm_memory(device: torch.device, gigabytes: float = 2.0) -> None:
    """Touch a large block once, so a VM's memory is backed before anything is timed."""
    if device.type == "cpu":
        block = torch.empty(int(gigabytes * 2**30) // 4, dtype=torch.float32)
        block.fill_(0)
        del block


def copy_gbps(n: int, dtype: torch.dtype, device: torch.device, repeats: int) -> float:
    """The device's copy bandwidth: one read and one write of n elements."""
    src = torch.empty(n, dtype=dtype, device=device).uniform_()
    dst = torch.empty_like(src)
    seconds = time_calls({"copy": lambda: dst.copy_(src)}, repeats, device)["copy"]
    return 2 * n * src.element_size() / seconds / 1e9


def bce_gbps(
    n: int,
    dtype: torch.dtype,
    device: torch.device,
    mode: str,
    repeats: int,
    reduction: str = "mean",
) -> dict[str, float]:
    """Effective GB/s of each BCE method in METHODS: the least bytes it must move over its time."""
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(n, generator=g, device=device).to(dtype)
    y = torch.rand(n, generator=g, device=device).to(dtype)
    if mode == "forward+backward":
        x.requires_grad_()

    def step(loss_fn: Callable) -> Callable[[], None]:
        def call() -> None:
            loss = loss_fn(x, y, reduction=reduction)
            if x.requires_grad:
                x.grad = None
                loss.sum().backward()

        return call

    seconds = time_calls({m: step(fn) for m, fn in METHODS.items()}, repeats, device)
    return {
        m: ELEMENT_READS_WRITES[mode] * n * x.element_size() / s / 1e9 for m, s in seconds.items()
    }
