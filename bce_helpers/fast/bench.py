"""Timing for the at-scale notebook and benchmarks: seconds, bytes moved, GB/s."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from bce_helpers.fast.compiler import compiled
from bce_helpers.fast.cuda_graph import synchronize
from bce_helpers.fast.fused import fused_bce_with_logits
from bce_helpers.losses import bce_with_logits

# The least memory traffic per element, in units of the element size, of a forward and a
# separate backward: the forward reads input and target; the backward reads them again and
# writes the gradient. Effective bandwidth counts these bytes for every method.
ELEMENT_READS_WRITES = {"forward": 2, "forward+backward": 5}
# The fused loss computes the gradient in its forward pass: read x and y, write the gradient.
FUSED_READS_WRITES = {"forward": 2, "forward+backward": 3}
METHODS: dict[str, Callable] = {
    "eager torch": F.binary_cross_entropy_with_logits,
    # what a user would write instead: one line, torch's own loss compiled
    "compiled torch": compiled(
        F.binary_cross_entropy_with_logits, "torch.compile(F.binary_cross_entropy_with_logits)"
    ),
    "eager from scratch": bce_with_logits,
    "fused": fused_bce_with_logits,
}


def bytes_per_element(method: str, mode: str, element_size: int) -> int:
    """The bytes per element a method's design moves at least: 20 or 12 in float32 fwd+bwd."""
    moves = FUSED_READS_WRITES if method.startswith("fused") else ELEMENT_READS_WRITES
    return moves[mode] * element_size


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the fastest and the median of the timed calls."""

    best: float
    median: float


def _timed_calls(fn: Callable[[], object], calls: int, device: torch.device) -> list[float]:
    """Seconds of each of `calls` calls of fn: CUDA events on CUDA (the GPU's own clock, no
    host jitter), elsewhere perf_counter around the call and a synchronisation."""
    if device.type == "cuda":
        pairs = []
        for _ in range(calls):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            pairs.append((start, end))
        torch.cuda.synchronize(device)
        return [start.elapsed_time(end) / 1e3 for start, end in pairs]
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def time_call(
    fn: Callable[[], object],
    repeats: int,
    device: torch.device,
    warmup: int = 2,
    min_seconds: float = 0.0,
) -> Timing:
    """Best and median seconds of at least `repeats` calls of fn, after `warmup` untimed calls.

    With min_seconds, rounds of `repeats` calls go on until that much time has passed: a
    fast call's best is then taken over many calls, not over a fraction of a second that a
    neighbour's burst of work can spoil."""
    for _ in range(warmup):  # a compiled fn compiles (and may recompile once) here
        fn()
    synchronize(device)
    times: list[float] = []
    began = time.perf_counter()
    while not times or time.perf_counter() - began < min_seconds:
        times += _timed_calls(fn, repeats, device)
    # never 0 s, so that a GB/s is always finite (a call faster than the clock's tick)
    tick = time.get_clock_info("perf_counter").resolution
    return Timing(best=max(min(times), tick), median=max(statistics.median(times), tick))


def time_calls(
    fns: Mapping[str, Callable[[], object]],
    repeats: int,
    device: torch.device,
    warmup: int = 2,
    min_seconds: float = 0.0,
) -> dict[str, Timing]:
    """time_call for each fn, each in its own block: the fns do not disturb each other's
    caches and clocks, as they do when they take turns call by call."""
    return {name: time_call(fn, repeats, device, warmup, min_seconds) for name, fn in fns.items()}


def interleaved_timings(
    fns: Mapping[str, Callable[[], object]],
    repeats: int,
    device: torch.device,
    rounds: int,
    warmup: int = 2,
    min_seconds: float = 0.0,
) -> dict[str, Timing]:
    """Each fn timed in `rounds` rounds that take turns (every fn once per round, at least
    `repeats` calls and min_seconds / rounds each): its best call, and the median over the
    rounds of each round's median, so a neighbour's burst of work spoils one round, not a
    method."""
    rounds_of: dict[str, list[Timing]] = {name: [] for name in fns}
    for r in range(rounds):
        for name, fn in fns.items():
            each = time_call(fn, repeats, device, warmup if r == 0 else 0, min_seconds / rounds)
            rounds_of[name].append(each)
    return {
        name: Timing(
            best=min(t.best for t in timings),
            median=statistics.median(t.median for t in timings),
        )
        for name, timings in rounds_of.items()
    }


def warm_memory(device: torch.device, gigabytes: float = 2.0) -> None:
    """Touch a large block once, so a VM's memory is backed before anything is timed."""
    if device.type == "cpu":
        block = torch.empty(int(gigabytes * 2**30) // 4, dtype=torch.float32)
        block.fill_(0)
        del block


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


def keep_freed_memory() -> str:
    """Have glibc's malloc keep freed memory for the next allocation, as jemalloc and
    tcmalloc do (and torch's CUDA allocator), for the rest of the process: say what the
    allocator does.

    By default each CPU tensor of 64 MB gets fresh pages from the kernel, and page faults
    that zero them cost as much as a BCE pass: the arithmetic would be lost in them. Every
    method's results are allocated the same way."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None or not (mallopt(M_MMAP_MAX, 0) and mallopt(M_TRIM_THRESHOLD, 2**31 - 1)):
        return "the system's malloc, unchanged (no glibc mallopt here)"
    return "glibc's malloc, keeping freed memory for reuse (mallopt)"


def gbps(bytes_moved: float, seconds: float) -> float:
    """Gigabytes per second."""
    return bytes_moved / seconds / 1e9


def copy_timing(
    n: int, dtype: torch.dtype, device: torch.device, repeats: int, min_seconds: float = 0.0
) -> Timing:
    """Seconds of one copy of n elements (one read and one write of each)."""
    src = torch.empty(n, dtype=dtype, device=device).uniform_()
    dst = torch.empty_like(src)
    return time_call(lambda: dst.copy_(src), repeats, device, min_seconds=min_seconds)


def copy_gbps(n: int, dtype: torch.dtype, device: torch.device, repeats: int) -> float:
    """The device's copy bandwidth (best call): one read and one write of n elements."""
    seconds = copy_timing(n, dtype, device, repeats).best
    return gbps(2 * n * torch.empty((), dtype=dtype).element_size(), seconds)


def random_inputs(
    n: int, dtype: torch.dtype, device: torch.device, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """n standard-normal logits and n soft targets in [0, 1), drawn on the device."""
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(n, generator=g, device=device).to(dtype)
    y = torch.rand(n, generator=g, device=device).to(dtype)
    return x, y


def bce_timings(
    n: int,
    dtype: torch.dtype,
    device: torch.device,
    mode: str,
    repeats: int,
    reduction: str = "mean",
    methods: Mapping[str, Callable] = METHODS,
    warmup: int = 2,
    min_seconds: float = 0.0,
    rounds: int = 0,
) -> dict[str, Timing]:
    """Seconds per call of each BCE method on n random logits and soft targets, after
    `warmup` untimed calls each (at least `repeats` timed calls and `min_seconds` each), each
    method in its own block, or with rounds > 0 in that many interleaved rounds."""
    x, y = random_inputs(n, dtype, device)
    if mode == "forward+backward":
        x.requires_grad_()

    def step(loss_fn: Callable) -> Callable[[], None]:
        def call() -> None:
            loss = loss_fn(x, y, reduction=reduction)
            if x.requires_grad:
                x.grad = None
                loss.backward()

        return call

    calls = {m: step(fn) for m, fn in methods.items()}
    if rounds:
        return interleaved_timings(calls, repeats, device, rounds, warmup, min_seconds)
    return time_calls(calls, repeats, device, warmup, min_seconds)


def effective_gbps(n: int, dtype: torch.dtype, mode: str, seconds: float) -> float:
    """Effective bandwidth: the least bytes a forward (and separate backward) moves, per second."""
    element_size = torch.empty((), dtype=dtype).element_size()
    return gbps(ELEMENT_READS_WRITES[mode] * n * element_size, seconds)


def bce_gbps(
    n: int,
    dtype: torch.dtype,
    device: torch.device,
    mode: str,
    repeats: int,
    reduction: str = "mean",
) -> dict[str, float]:
    """Effective GB/s of each method in METHODS, from its fastest call."""
    timings = bce_timings(n, dtype, device, mode, repeats, reduction)
    return {m: effective_gbps(n, dtype, mode, t.best) for m, t in timings.items()}


def relative_speed(seconds: float, reference_seconds: float, within: float = 0.1) -> str:
    """How a time compares with a reference time, in words: '3.2x faster than', '1.5x slower
    than', 'about as fast as' when they differ by less than `within` (a fraction), and
    'as fast as' when they are equal."""
    if seconds <= 0 or reference_seconds <= 0:
        raise ValueError(
            f"seconds={seconds!r} and reference_seconds={reference_seconds!r} must be > 0"
        )
    ratio = reference_seconds / seconds
    if abs(ratio - 1) < within:
        return f"about as fast as (within {within:.0%})"
    if ratio == 1:
        return "as fast as"
    factor = max(ratio, 1 / ratio)
    shown = f"{factor:.1f}" if factor >= 1.1 else f"{factor:.2f}"  # 1.04x, not 1.0x
    return f"{shown}x faster than" if ratio > 1 else f"{shown}x slower than"


def format_bytes(n: int) -> str:
    """A byte count in the largest binary unit that keeps it at least 1: '4 KiB', '64 MiB'."""
    if n < 0:
        raise ValueError(f"n={n!r} must be >= 0")
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


def _size_bytes(text: str) -> int:
    """'32768K' (sysfs's way of writing a cache size) in bytes."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    text = text.strip()
    if text and text[-1].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def cpu_cache_bytes(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int | None:
    """Size of the CPU's last-level data cache as Linux's sysfs lists it, or None."""
    best: tuple[int, int] | None = None
    for index in sorted(root.glob("index*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            size = _size_bytes((index / "size").read_text())
        except (OSError, ValueError):
            continue
        if kind != "Instruction" and (best is None or level > best[0]):
            best = (level, size)
    return None if best is None else best[1]


def last_level_cache_bytes(device: torch.device) -> int | None:
    """Size of the device's last-level cache in bytes (CUDA: the L2), or None where unknown."""
    if device.type == "cuda":
        return getattr(torch.cuda.get_device_properties(device), "L2_cache_size", None) or None
    if device.type == "cpu":
        return cpu_cache_bytes()
    return None


def memory_needed(n: int, dtype: torch.dtype) -> int:
    """Bytes that copy_gbps and bce_gbps need at their peak for n elements, with a margin.

    Counted: 16 tensors of the dtype and 16 bytes more per element (80 bytes in float32, 48
    in the 16-bit types): the inputs (drawn in float32 first), the gradient, and eager
    from scratch's intermediates, which autograd keeps. Below 2**23 elements the allocator
    keeps freed blocks, so the peak per element can be higher, but the total stays small.
    tests/bce_helpers/fast/test_bench.py measures the peak at 2**24 against this bound."""
    element_size = torch.empty((), dtype=dtype).element_size()
    return n * (16 * element_size + 16)


def memory_available(device: torch.device) -> int | None:
    """Bytes the device can still allocate, or None where that is unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type == "mps":
        mps = getattr(torch, "mps", None)
        if all(hasattr(mps, f) for f in ("recommended_max_memory", "driver_allocated_memory")):
            return mps.recommended_max_memory() - mps.driver_allocated_memory()
        return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    if "SC_PHYS_PAGES" in os.sysconf_names:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


def check_fits(max_log2_size: int, dtype: torch.dtype, device: torch.device) -> None:
    """Refuse, with a ValueError naming max_log2_size, a largest size the device cannot hold."""
    need, have = memory_needed(2**max_log2_size, dtype), memory_available(device)
    if have is None or need <= have:
        return
    fits = [k for k in range(10, max_log2_size) if memory_needed(2**k, dtype) <= have]
    advice = f"use max_log2_size <= {fits[-1]}" if fits else "free some memory first"
    raise ValueError(
        f"parameter max_log2_size={max_log2_size} is not allowed on this {device.type}: "
        f"with dtype={str(dtype).removeprefix('torch.')!r} the measurements need about "
        f"{need / 2**30:.1f} GiB at 2**{max_log2_size} elements (the inputs, the gradient "
        f"and eager torch's intermediates), but {have / 2**30:.1f} GiB is available; {advice}"
    )
