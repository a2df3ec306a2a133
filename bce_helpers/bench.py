"""Timing for the at-scale notebook and benchmarks: seconds, bytes moved, GB/s."""

from __future__ import annotations

import time
from collections.abc import Callable

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


def time_call(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Fastest seconds of fn() over `repeats` calls, after one warm-up call.

    The minimum, as timeit advises: on a shared machine, slower calls measure the
    neighbours, not the code."""
    fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


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
    seconds = time_call(lambda: dst.copy_(src), repeats, device)
    return 2 * n * src.element_size() / seconds / 1e9


def bce_gbps(
    method: str,
    n: int,
    dtype: torch.dtype,
    device: torch.device,
    mode: str,
    repeats: int,
    reduction: str = "mean",
) -> float:
    """Effective GB/s of one BCE method: the least bytes it must move over its time."""
    loss_fn = METHODS[method]
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(n, generator=g, device=device).to(dtype)
    y = torch.rand(n, generator=g, device=device).to(dtype)
    if mode == "forward":

        def step():
            return loss_fn(x, y, reduction=reduction)
    else:
        x.requires_grad_()

        def step():
            x.grad = None
            loss_fn(x, y, reduction=reduction).sum().backward()

    seconds = time_call(step, repeats, device)
    return ELEMENT_READS_WRITES[mode] * n * x.element_size() / seconds / 1e9
