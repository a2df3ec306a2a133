"""bench: timing calls, bytes and GB/s, cache and memory sizes, and the refusal of a size the
device cannot hold."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from bce_helpers.fast import bench
from bce_helpers.losses import bce_with_logits


def test_check_fits_refuses_what_memory_cannot_hold(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(bench, "memory_available", lambda device: 9 * 2**30)
    bench.check_fits(26, torch.float32, cpu)  # 80 bytes * 2**26 = 5 GiB: fits
    with pytest.raises(ValueError) as info:
        bench.check_fits(28, torch.float32, cpu)  # 20 GiB
    message = str(info.value)
    assert message.startswith("parameter max_log2_size=28 is not allowed on this cpu")
    assert "20.0 GiB at 2**28 elements" in message and "9.0 GiB is available" in message
    assert "use max_log2_size <= 26" in message  # 2**27 needs 10 GiB
    bench.check_fits(27, torch.bfloat16, cpu)  # 48 bytes * 2**27 = 6 GiB
    monkeypatch.setattr(bench, "memory_available", lambda device: None)
    bench.check_fits(28, torch.float32, cpu)  # unknown: not refused


PEAK = """
import ctypes, re, sys, torch
from bce_helpers.fast import bench
def kib(field):
    return int(re.search(field + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
n, cpu = 2**24, torch.device("cpu")
for name in sys.argv[1:]:
    dtype = getattr(torch, name)
    for mode in bench.ELEMENT_READS_WRITES:  # compile and warm up at a small size first
        bench.bce_gbps(2**12, dtype, cpu, mode, 1)
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand back what was freed, then
    open("/proc/self/clear_refs", "w").write("5")  # start the peak (VmHWM) afresh
    before = kib("VmRSS")
    bench.copy_gbps(n, dtype, cpu, 1)
    for mode in bench.ELEMENT_READS_WRITES:  # one call each: a repeat needs no more memory
        bench.bce_timings(n, dtype, cpu, mode, 1, warmup=0)
    print(name, (kib("VmHWM") - before) * 1024, flush=True)
"""
PEAK_DTYPES = ("float32", "bfloat16")


@pytest.fixture(scope="module")
def measured_peaks() -> dict[str, int]:
    """Each dtype's growth of the peak, measured one after the other in one fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", PEAK, *PEAK_DTYPES], capture_output=True, text=True, check=True
    )
    return {
        name: int(grown)
        for name, grown in (line.split() for line in out.stdout.split("\n") if line)
    }


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the peak from Linux's /proc/self"
)
@pytest.mark.parametrize("dtype", PEAK_DTYPES)
def test_memory_needed_covers_a_measured_peak(measured_peaks, dtype):
    """The measurements' peak memory at 2**24 elements (where the check matters: large
    sizes), in a fresh process, is within the bound. The peak is measured from after the
    warm-up (whose compiler can raise the lifetime peak above anything measured later), with
    freed memory handed back first, so it grows by at least the one tensor a call allocates."""
    grown, n = measured_peaks[dtype], 2**24
    element_size = torch.empty((), dtype=getattr(torch, dtype)).element_size()
    assert n * element_size <= grown <= bench.memory_needed(n, getattr(torch, dtype))


def write_caches(root, caches):
    """A sysfs cache folder: index0, index1, ... with each cache's level, type and size."""
    for index, (level, kind, size) in enumerate(caches):
        folder = root / f"index{index}"
        folder.mkdir()
        (folder / "level").write_text(f"{level}\n")
        (folder / "type").write_text(f"{kind}\n")
        (folder / "size").write_text(f"{size}\n")


def test_cpu_cache_bytes_reads_the_largest_data_level(tmp_path):
    write_caches(
        tmp_path,
        [
            (1, "Data", "48K"),
            (1, "Instruction", "32K"),
            (2, "Unified", "2048K"),
            (3, "Unified", "32M"),
        ],
    )
    assert bench.cpu_cache_bytes(tmp_path) == 32 * 2**20
    (tmp_path / "index3" / "size").write_text("garbage\n")
    assert bench.cpu_cache_bytes(tmp_path) == 2048 * 2**10


def test_relative_speed_and_format_bytes_words():
    assert bench.relative_speed(1.0, 3.2) == "3.2x faster than"
    assert bench.relative_speed(1.5, 1.0) == "1.5x slower than"
    assert bench.relative_speed(1.0, 1.05) == "about as fast as (within 10%)"
    with pytest.raises(ValueError, match="seconds=0"):
        bench.relative_speed(0, 1.0)
    assert bench.format_bytes(4096) == "4 KiB"
    assert bench.format_bytes(64 * 2**20) == "64 MiB"
    assert bench.format_bytes(3 * 2**29) == "1.5 GiB"
    assert bench.format_bytes(10) == "10 B"


def test_time_calls_never_returns_zero_seconds_and_orders_best_below_median():
    timings = bench.time_calls({"nothing": lambda: None}, 3, torch.device("cpu"))
    assert 0 < timings["nothing"].best <= timings["nothing"].median


@pytest.mark.parametrize(("min_seconds", "least", "most"), [(0.0, 5, 5), (0.2, 20, 50)])
def test_time_call_goes_on_in_rounds_until_min_seconds(min_seconds, least, most):
    """3 timed calls after 2 warm-up calls; with min_seconds, rounds of 3 calls of 10 ms until
    0.2 s have passed: 7 rounds (21 timed calls), a few fewer on a slow clock, never fewer
    than 0.2 s needs."""
    calls = []
    timing = bench.time_call(
        lambda: (calls.append(1), time.sleep(0.01)), 3, torch.device("cpu"), min_seconds=min_seconds
    )
    assert least <= len(calls) <= most and (len(calls) - 2) % 3 == 0
    assert 0.01 <= timing.best <= timing.median < 0.05


FAULTS = """
import resource, sys
import torch
from bce_helpers.fast import bench
if sys.argv[1] == "keep":
    print(bench.keep_freed_memory())
def faults_of_a_fresh_tensor():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.empty(2**24).fill_(1.0)  # 64 MiB, written once, freed
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(*(faults_of_a_fresh_tensor() for _ in range(20)))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc, Linux's rusage")
def test_keep_freed_memory_spares_a_second_tensor_the_page_faults():
    """By default a freed 64 MiB tensor goes back to the kernel, and the next one faults in
    its 16384 pages of 4 KiB afresh (fewer where the kernel hands out huge pages); with
    keep_freed_memory most allocations reuse freed memory: no faults (posix_memalign pads
    its request, so the heap takes a few tensors, varying from run to run, to hold a hole
    that fits one)."""

    def faults(mode: str) -> tuple[str, list[int]]:
        cmd = [sys.executable, "-c", FAULTS, mode]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        *said, counts = out.strip().split("\n")
        return "".join(said), [int(c) for c in counts.split()]

    said, kept = faults("keep")
    _, fresh = faults("default")
    assert said == "glibc's malloc, keeping freed memory for reuse (mallopt)"
    assert statistics.median(kept) < 16 < statistics.median(fresh), (kept, fresh)


# ---- in-process unit tests: every function of bench, with known numbers and fakes ----

CPU, META, CUDA = torch.device("cpu"), torch.device("meta"), torch.device("cuda", 0)
GIB = 2**30


class Clock:
    """A perf_counter whose time passes only when a fake call spends it: the times that
    time_call measures are then exact. It starts far from 0, so that an elapsed time
    computed as now + start would show."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def fn(self, name, cost, log, limit=200):
        """A call that spends cost (seconds, or cost(i) for its i-th call) and logs its
        name; a runaway loop fails fast instead of spinning."""
        count = []

        def call():
            if len(count) >= limit:
                raise RuntimeError(f"{name} called more than {limit} times")
            self.now += cost(len(count)) if callable(cost) else cost
            count.append(1)
            log.append(name)

        return call


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(time, "perf_counter", fake)
    return fake


def test_time_call_defaults_two_warmup_calls_and_one_round(clock):
    """By default: 2 untimed warm-up calls, then one round of `repeats` timed calls."""
    log = []
    timing = bench.time_call(clock.fn("f", 2**-4, log), 3, CPU)
    assert len(log) == 5
    assert timing == bench.Timing(best=0.0625, median=0.0625)


def test_time_call_rounds_until_exactly_min_seconds_and_keeps_every_round(clock):
    """1 warm-up call (8 s, not counted), then rounds of 2 calls until 1 s has passed:
    0.5625 s after the first round, exactly 1 s after the second, which ends it. Best and
    median are over all 4 timed calls, not the last round's."""
    log, costs = [], [8.0, 0.0625, 0.5, 0.25, 0.1875, 0.0625, 0.0625]
    fn = clock.fn("f", lambda i: costs[i], log)
    timing = bench.time_call(fn, 2, CPU, warmup=1, min_seconds=1.0)
    assert len(log) == 5
    assert timing == bench.Timing(best=0.0625, median=0.21875)  # (0.1875 + 0.25) / 2


def test_time_call_of_a_call_faster_than_the_clock_is_one_tick(clock):
    """A call that takes no measurable time counts as the clock's resolution, never 0 s."""
    timing = bench.time_call(clock.fn("f", 0.0, []), 3, CPU)
    tick = time.get_clock_info("perf_counter").resolution
    assert tick > 0 and timing == bench.Timing(best=tick, median=tick)


def test_time_calls_times_each_fn_in_its_own_block(clock):
    """Each fn's warm-up and rounds run together, one fn after the other; min_seconds
    applies to each: 0.25 s calls take 2 rounds of 2 to reach 1 s, 0.5 s calls 1 round."""
    log = []
    fns = {"a": clock.fn("a", 0.25, log), "b": clock.fn("b", 0.5, log)}
    timings = bench.time_calls(fns, 2, CPU, min_seconds=1.0)
    assert log == ["a"] * 6 + ["b"] * 4
    assert timings == {"a": bench.Timing(0.25, 0.25), "b": bench.Timing(0.5, 0.5)}
    log.clear()
    bench.time_calls({"a": clock.fn("a", 2**-4, log)}, 1, CPU)  # defaults: 2 warm-up, 1 round
    assert log == ["a"] * 3


def test_interleaved_timings_take_turns_and_warm_up_in_the_first_round_only(clock):
    """3 rounds of a then b; the warm-up call only in round 0; min_seconds / rounds each
    turn: 0.25 s of 1/16 s calls in rounds of 2 is 4 timed calls a turn."""
    log = []
    fns = {"a": clock.fn("a", 2**-4, log), "b": clock.fn("b", 2**-4, log)}
    timings = bench.interleaved_timings(fns, 2, CPU, rounds=3, warmup=1, min_seconds=0.75)
    assert log == ["a"] * 5 + ["b"] * 5 + (["a"] * 4 + ["b"] * 4) * 2
    assert timings == {name: bench.Timing(0.0625, 0.0625) for name in "ab"}
    log.clear()
    bench.interleaved_timings({"a": clock.fn("a", 2**-4, log)}, 1, CPU, rounds=2)
    assert log == ["a"] * 4  # defaults: 2 warm-up calls, no min_seconds


def test_interleaved_timings_best_call_and_median_of_round_medians(clock):
    """a's rounds: [1, 1, 1], [0.5, 8, 8], [2, 8, 8]: its best call is 0.5 s and the
    median of the rounds' medians (1, 8, 8) is 8 s (the median of all calls is 2 s)."""
    costs = [1, 1, 1, 0.5, 8, 8, 2, 8, 8]
    log = []
    fns = {"a": clock.fn("a", lambda i: costs[i], log), "b": clock.fn("b", 4.0, log)}
    timings = bench.interleaved_timings(fns, 3, CPU, rounds=3, warmup=0)
    assert statistics.median(costs) == 2
    assert timings == {"a": bench.Timing(0.5, 8), "b": bench.Timing(4.0, 4.0)}


class FakeGpu:
    """CUDA events and synchronize on a fake GPU clock: an event records the GPU's time,
    elapsed_time gives milliseconds, and (as CUDA does) refuses events made without
    enable_timing=True, or read before a synchronize has waited for them."""

    def __init__(self):
        self.now, self.pending, self.synchronized = 0.0, False, []
        gpu = self

        class Event:
            def __init__(self, enable_timing=False):
                self.enable_timing = enable_timing

            def record(self):
                self.at, gpu.pending = gpu.now, True

            def elapsed_time(self, end):
                if not (self.enable_timing and end.enable_timing):
                    raise RuntimeError("Both events must be created with enable_timing=True")
                if gpu.pending:
                    raise RuntimeError("device not ready")
                return (end.at - self.at) * 1e3

        self.Event = Event

    def synchronize(self, device=None):
        self.pending = False
        self.synchronized.append(device)

    def fn(self, costs):
        """A kernel launch: the GPU spends costs[i] seconds; the host returns at once."""
        calls = []

        def call():
            self.now += costs[len(calls)]
            calls.append(1)

        return call


def test_time_call_on_cuda_reads_the_gpus_own_clock(monkeypatch):
    """On CUDA the seconds come from CUDA events (ms / 1e3), read after one synchronize of
    the timed device, not from the host's clock, which sees only the launches."""
    gpu = FakeGpu()
    monkeypatch.setattr(torch.cuda, "Event", gpu.Event)
    monkeypatch.setattr(torch.cuda, "synchronize", gpu.synchronize)
    timing = bench.time_call(gpu.fn([16.0, 1.0, 3.0, 2.0]), 3, CUDA, warmup=1)
    assert timing == bench.Timing(best=1.0, median=2.0)
    assert gpu.synchronized == [CUDA, CUDA]  # after the warm-up, and after the timed calls


def test_gbps_and_effective_bandwidth_from_known_numbers():
    """2e9 bytes in 0.5 s is 4 GB/s; effective GB/s counts 2 elements (x, y) a forward, 5
    a forward and backward (x, y twice and the gradient)."""
    assert bench.gbps(2e9, 0.5) == 4.0
    assert bench.gbps(1e9, 4.0) == 0.25
    # 10**8 float32 elements: forward 8e8 bytes, forward+backward 2e9 bytes
    assert bench.effective_gbps(10**8, torch.float32, "forward", 0.2) == pytest.approx(
        4.0, rel=1e-12
    )
    assert bench.effective_gbps(10**8, torch.float32, "forward+backward", 0.5) == pytest.approx(
        4.0, rel=1e-12
    )
    # bfloat16: 2 bytes an element
    assert bench.effective_gbps(10**8, torch.bfloat16, "forward+backward", 0.5) == pytest.approx(
        2.0, rel=1e-12
    )


@pytest.mark.parametrize(
    ("method", "mode", "dtype", "expected"),
    [
        ("eager torch", "forward", torch.float32, 8),
        ("eager torch", "forward+backward", torch.float32, 20),
        ("compiled torch", "forward+backward", torch.bfloat16, 10),
        ("fused", "forward", torch.float32, 8),
        ("fused", "forward+backward", torch.float32, 12),
        ("fused triton", "forward+backward", torch.bfloat16, 6),
    ],
)
def test_bytes_per_element_by_design(method, mode, dtype, expected):
    """Forward: read x and y (2 elements); a separate backward reads them again and writes
    the gradient (5); a fused loss reads x and y and writes the gradient once (3)."""
    size = torch.empty((), dtype=dtype).element_size()
    assert bench.bytes_per_element(method, mode, size) == expected


def test_copy_timing_copies_n_fresh_uniform_elements(monkeypatch):
    """copy_timing times a copy of n uniform [0, 1) elements of the dtype on the device,
    with min_seconds 0 unless asked; the copy lands where asked (meta too)."""
    seen, real = [], bench.time_call

    def spy(fn, repeats, device, *, min_seconds):
        seen.append((fn, repeats, device, min_seconds))
        return real(fn, repeats, device, min_seconds=min_seconds)

    monkeypatch.setattr(bench, "time_call", spy)
    timing = bench.copy_timing(2**10, torch.bfloat16, CPU, 2)
    assert 0 < timing.best <= timing.median
    fn, repeats, device, min_seconds = seen[-1]
    assert (repeats, device, min_seconds) == (2, CPU, 0.0)
    copied = fn()
    assert copied.shape == (2**10,) and copied.dtype == torch.bfloat16 and copied.device == CPU
    assert copied.min() >= 0 and copied.max() <= 1 and copied.unique().numel() > 50
    bench.copy_timing(2**10, torch.float32, META, 1)
    assert seen[-1][0]().device == META
    began = time.perf_counter()
    bench.copy_timing(2**10, torch.float32, CPU, 1, min_seconds=0.02)
    assert seen[-1][3] == 0.02 and time.perf_counter() - began >= 0.02


def test_copy_gbps_counts_one_read_and_one_write(monkeypatch):
    """2.5e8 float32 elements copied in 0.5 s (best; the median is ignored): 2e9 bytes,
    4 GB/s; in bfloat16 half the bytes."""
    seen = []

    def fake(n, dtype, device, repeats):
        seen.append((n, dtype, device, repeats))
        return bench.Timing(best=0.5, median=2.0)

    monkeypatch.setattr(bench, "copy_timing", fake)
    assert bench.copy_gbps(250_000_000, torch.float32, CPU, 3) == pytest.approx(4.0, rel=1e-12)
    assert bench.copy_gbps(250_000_000, torch.bfloat16, CPU, 3) == pytest.approx(2.0, rel=1e-12)
    assert seen == [(250_000_000, torch.float32, CPU, 3), (250_000_000, torch.bfloat16, CPU, 3)]


def test_copy_gbps_of_a_real_copy_is_finite_and_positive():
    assert 0 < bench.copy_gbps(2**10, torch.float32, CPU, 2) < float("inf")


def test_random_inputs_are_seeded_normal_logits_and_uniform_targets():
    """n standard-normal logits and n targets in [0, 1), on the device asked for even where
    torch's default device is another, the same for the same seed (0 by default), drawn in
    float32 and rounded to the dtype."""
    n = 2**12
    with torch.device("meta"):
        x, y = bench.random_inputs(n, torch.float32, CPU, seed=3)
        x16, y16 = bench.random_inputs(n, torch.bfloat16, CPU, seed=3)
    assert x.shape == y.shape == (n,) and x.device == y.device == CPU
    assert x.dtype == y.dtype == torch.float32
    assert abs(x.mean().item()) < 0.1 and abs(x.std().item() - 1) < 0.1
    assert y.min() >= 0 and y.max() < 1 and abs(y.mean().item() - 0.5) < 0.05
    assert x16.dtype == y16.dtype == torch.bfloat16
    assert torch.equal(x16, x.to(torch.bfloat16)) and torch.equal(y16, y.to(torch.bfloat16))
    again = bench.random_inputs(n, torch.float32, CPU, seed=3)
    assert torch.equal(again[0], x) and torch.equal(again[1], y)
    default, zero = (
        bench.random_inputs(n, torch.float32, CPU),
        bench.random_inputs(n, torch.float32, CPU, 0),
    )
    assert torch.equal(default[0], zero[0]) and torch.equal(default[1], zero[1])
    assert not torch.equal(zero[0], x)


def recording(loss_fn, seen):
    """A BCE method that notes its inputs and its loss."""

    def method(x, y, reduction):
        loss = loss_fn(x, y, reduction=reduction)
        seen.append((x, y, reduction, loss.detach().double()))
        return loss

    return method


def bce64(x, y, reduction):
    """The float64 reference: softplus(x) - x y, summed or averaged."""
    x, y = x.detach().double(), y.double()
    losses = F.softplus(x) - x * y
    return losses.sum() if reduction == "sum" else losses.mean()


def test_bce_timings_forward_and_backward_times_the_loss_and_its_gradient():
    """Each method: 2 warm-up and `repeats` timed calls on the same n logits (which need a
    gradient) and targets, with the reduction asked for; the losses match float64, and the
    gradient left on x is one call's: sigmoid(x) - y for a sum."""
    torch_seen, scratch_seen = [], []
    methods = {
        "eager torch": recording(F.binary_cross_entropy_with_logits, torch_seen),
        "eager from scratch": recording(bce_with_logits, scratch_seen),
    }
    n = 2**10
    timings = bench.bce_timings(n, torch.float32, CPU, "forward+backward", 3, "sum", methods)
    assert list(timings) == list(methods)
    assert all(0 < t.best <= t.median for t in timings.values())
    assert len(torch_seen) == len(scratch_seen) == 5
    x, y = torch_seen[0][0], torch_seen[0][1]
    assert x.shape == y.shape == (n,) and x.dtype == y.dtype == torch.float32
    assert x.requires_grad and not y.requires_grad and y.min() >= 0 and y.max() < 1
    for seen_x, seen_y, reduction, loss in torch_seen + scratch_seen:
        assert seen_x is x and seen_y is y and reduction == "sum"
        assert loss.item() == pytest.approx(bce64(x, y, "sum").item(), rel=1e-5)
    expected = torch.sigmoid(x.detach().double()) - y.double()
    torch.testing.assert_close(x.grad.double(), expected, atol=1e-6, rtol=1e-5)


def test_bce_timings_forward_only_by_default_reduction_mean():
    """forward: no gradient; the default reduction is mean; the inputs on the device asked
    for, in its dtype, whatever torch's default device."""
    seen = []
    with torch.device("meta"):
        timings = bench.bce_timings(
            2**10,
            torch.bfloat16,
            CPU,
            "forward",
            2,
            methods={"m": recording(F.binary_cross_entropy_with_logits, seen)},
        )
    assert list(timings) == ["m"] and 0 < timings["m"].best <= timings["m"].median
    assert len(seen) == 4
    x, y, reduction, loss = seen[0]
    assert reduction == "mean" and not x.requires_grad and x.grad is None
    assert x.dtype == torch.bfloat16 and x.device == CPU and y.device == CPU
    assert loss.item() == pytest.approx(bce64(x, y, "mean").item(), rel=1e-2)


@pytest.mark.parametrize("rounds", [0, 3])
def test_bce_timings_hand_warmup_rounds_and_min_seconds_on(rounds):
    """warmup and min_seconds reach the timing, in one block (rounds 0) or in interleaved
    rounds: 1 warm-up call, then 2 timed calls a round (when min_seconds is 0)."""
    seen = []
    methods = {"m": recording(F.binary_cross_entropy_with_logits, seen)}
    bench.bce_timings(
        2**10, torch.float32, CPU, "forward", 2, methods=methods, warmup=1, rounds=rounds
    )
    assert len(seen) == 1 + 2 * max(rounds, 1)
    began = time.perf_counter()
    bench.bce_timings(
        2**10, torch.float32, CPU, "forward", 1, methods=methods, min_seconds=0.03, rounds=rounds
    )
    assert time.perf_counter() - began >= 0.03


def test_bce_gbps_turns_each_methods_best_time_into_effective_gbps(monkeypatch):
    """10**8 float32 elements, forward and backward: 2e9 bytes, counted the same for every
    method; in 0.5 s (the best call) 4 GB/s, in 0.25 s 8 GB/s."""
    seen = []

    def fake(n, dtype, device, mode, repeats, reduction):
        seen.append((n, dtype, device, mode, repeats, reduction))
        return {"eager torch": bench.Timing(0.5, 1.0), "fused": bench.Timing(0.25, 2.0)}

    monkeypatch.setattr(bench, "bce_timings", fake)
    got = bench.bce_gbps(10**8, torch.float32, CPU, "forward+backward", 3)
    assert got == pytest.approx({"eager torch": 4.0, "fused": 8.0}, rel=1e-12)
    assert seen == [(10**8, torch.float32, CPU, "forward+backward", 3, "mean")]
    got = bench.bce_gbps(10**8, torch.bfloat16, CPU, "forward", 2, "sum")
    assert got == pytest.approx({"eager torch": 0.8, "fused": 1.6}, rel=1e-12)
    assert seen[-1] == (10**8, torch.bfloat16, CPU, "forward", 2, "sum")


def glibc():
    """The C library with malloc's own statistics (mallinfo2, glibc 2.33+), or None."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None

    class Mallinfo2(ctypes.Structure):
        _fields_ = [
            (field, ctypes.c_size_t)
            for field in [
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            ]
        ]

    libc.mallinfo2.restype = Mallinfo2
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    return libc


@pytest.mark.skipif(glibc() is None, reason="glibc's malloc statistics (mallinfo2)")
def test_keep_freed_memory_stops_mmap_and_trimming_in_process():
    """glibc, by default, serves a 64 MiB malloc with its own mmap (above the largest
    M_MMAP_THRESHOLD, 32 MiB); after keep_freed_memory it comes from the heap (M_MMAP_MAX
    0), and once freed it stays there, at the heap's top (M_TRIM_THRESHOLD 2**31 - 1).
    It changes malloc for the rest of the process, so the test sets glibc's documented
    defaults back (M_MMAP_MAX 65536, M_TRIM_THRESHOLD 128 KiB) and trims; only glibc's
    dynamic mmap threshold stays off (any mallopt of these turns it off)."""
    libc, size = glibc(), 2**26

    def malloc_and_free():
        before = libc.mallinfo2().hblks
        block = libc.malloc(size)
        mmapped = libc.mallinfo2().hblks - before
        libc.free(block)
        return mmapped, libc.mallinfo2().keepcost

    assert malloc_and_free()[0] == 1
    try:
        said = bench.keep_freed_memory()
        mmapped, kept_at_top = malloc_and_free()
    finally:
        libc.mallopt(-4, 65536)  # M_MMAP_MAX
        libc.mallopt(-1, 128 * 2**10)  # M_TRIM_THRESHOLD
        libc.malloc_trim(0)
    assert said == "glibc's malloc, keeping freed memory for reuse (mallopt)"
    assert mmapped == 0 and kept_at_top >= size
    assert malloc_and_free()[0] == 1  # the defaults are back


def test_keep_freed_memory_without_a_c_library_says_so(monkeypatch):
    """No C library found (so no mallopt): nothing changes."""
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert bench.keep_freed_memory() == "the system's malloc, unchanged (no glibc mallopt here)"


def test_warm_memory_touches_every_page_of_the_block_once(monkeypatch):
    """64 MiB (more than glibc's largest mmap threshold, so fresh pages from the kernel)
    of float32 zeros: one minor page fault a page, by the kernel's count (getrusage);
    transparent huge pages are 'madvise' or off for torch's allocations here."""
    resource = pytest.importorskip("resource")
    blocks, real = [], torch.empty

    def guarded(size, dtype=None):
        if size > 2**24:  # a wrong size must not fill the machine
            raise AssertionError(f"asked for {size} elements")
        blocks.append(real(size, dtype=dtype))
        return blocks[-1]

    monkeypatch.setattr(torch, "empty", guarded)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    bench.warm_memory(CPU, gigabytes=1 / 16)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    monkeypatch.undo()
    (block,) = blocks
    assert block.numel() * block.element_size() == 2**26 and block.dtype == torch.float32
    assert torch.count_nonzero(block) == 0
    pages = 2**26 // resource.getpagesize()
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not (thp.is_file() and "[always]" in thp.read_text()):
        assert 0.9 * pages <= faults


def test_warm_memory_defaults_to_2_gib_and_only_on_the_cpu(monkeypatch):
    """The default is 2 GiB: 2**29 float32 elements, zeroed (the fake block starts as NaN,
    and nothing is allocated); another device gets nothing."""
    asked, blocks = [], []

    def fake(size, dtype=None):
        asked.append((size, dtype))
        blocks.append(torch.full((16,), float("nan"), dtype=dtype))
        return blocks[-1]

    monkeypatch.setattr(torch, "empty", fake)
    bench.warm_memory(META)
    assert asked == []
    bench.warm_memory(CPU)
    assert asked == [(2**29, torch.float32)] and torch.count_nonzero(blocks[0]) == 0


def meminfo_bytes(field):
    """A /proc/meminfo field in bytes (its kB are KiB)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


@pytest.mark.skipif(not Path("/proc/meminfo").is_file(), reason="Linux's /proc/meminfo")
def test_memory_available_on_the_cpu_is_memavailable():
    """The CPU's available memory is the kernel's MemAvailable (read before and after, it
    moves a little), not MemTotal."""
    before = meminfo_bytes("MemAvailable")
    got = bench.memory_available(CPU)
    after = meminfo_bytes("MemAvailable")
    assert min(before, after) - 2**26 <= got <= max(before, after) + 2**26
    assert bench.memory_available(META) == pytest.approx(got, abs=2**27)


@pytest.mark.skipif(not Path("/proc/meminfo").is_file(), reason="Linux's /proc/meminfo")
@pytest.mark.parametrize(
    "content",
    [
        None,
        "MemTotal:  8000 kB\nMemAvailable:   123456 kB\n",
        "MemTotal:  8000 kB\nMemFree:  4000 kB\n",
    ],
)
def test_memory_available_reads_memavailable_else_the_physical_memory(
    monkeypatch, tmp_path, content
):
    """A MemAvailable line: its KiB in bytes; no such line (kernels before 3.14) or no
    /proc/meminfo: all physical memory (sysconf's pages, which is the kernel's MemTotal)."""
    fake = tmp_path / "meminfo"
    if content is not None:
        fake.write_text(content)
    monkeypatch.setattr(
        bench, "Path", lambda path: fake if path == "/proc/meminfo" else tmp_path / "none"
    )
    got = bench.memory_available(CPU)
    if content and "MemAvailable" in content:
        assert got == 123456 * 1024
    else:
        assert got == meminfo_bytes("MemTotal")
        monkeypatch.delitem(os.sysconf_names, "SC_PHYS_PAGES")
        assert bench.memory_available(CPU) is None


def test_memory_available_on_cuda_counts_what_torch_holds_unused(monkeypatch):
    """CUDA: the device's free memory plus what torch's allocator reserved but does not use:
    10 GiB free, 3 GiB reserved, 1 GiB allocated: 12 GiB."""

    def of(value):
        def query(device):
            assert device == CUDA
            return value

        return query

    monkeypatch.setattr(torch.cuda, "mem_get_info", of((10 * GIB, 80 * GIB)))
    monkeypatch.setattr(torch.cuda, "memory_reserved", of(3 * GIB))
    monkeypatch.setattr(torch.cuda, "memory_allocated", of(1 * GIB))
    assert bench.memory_available(CUDA) == 12 * GIB


def test_memory_available_on_mps_is_the_recommended_maximum_less_the_drivers(monkeypatch):
    """MPS: 16 GiB recommended, 4 GiB held by the driver: 12 GiB; unknown (None) where
    torch.mps lacks those functions, or torch has no mps."""
    mps = torch.device("mps")
    monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: 16 * GIB, raising=False)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 4 * GIB, raising=False)
    assert bench.memory_available(mps) == 12 * GIB
    monkeypatch.delattr(torch.mps, "driver_allocated_memory")
    assert bench.memory_available(mps) is None
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 4 * GIB, raising=False)
    monkeypatch.delattr(torch.mps, "recommended_max_memory")
    assert bench.memory_available(mps) is None
    monkeypatch.delattr(torch, "mps")
    assert bench.memory_available(mps) is None


def test_last_level_cache_bytes_of_cuda_is_its_l2(monkeypatch):
    """CUDA: the device's L2_cache_size; None where it is 0 or not reported."""
    props = {CUDA: SimpleNamespace(L2_cache_size=50 * 2**20)}
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: props[device])
    assert bench.last_level_cache_bytes(CUDA) == 50 * 2**20
    props[CUDA] = SimpleNamespace(L2_cache_size=0)
    assert bench.last_level_cache_bytes(CUDA) is None
    props[CUDA] = SimpleNamespace()
    assert bench.last_level_cache_bytes(CUDA) is None


def test_last_level_cache_bytes_of_the_cpu_is_its_largest_cache(monkeypatch):
    """CPU: what cpu_cache_bytes reads (checked above); here, where sysfs lists the
    caches, the largest data or unified one. Any other device: unknown."""
    folder = Path("/sys/devices/system/cpu/cpu0/cache")
    sizes = [
        int(index.joinpath("size").read_text().strip().removesuffix("K")) * 2**10
        for index in folder.glob("index*")
        if index.joinpath("type").read_text().strip() != "Instruction"
        and index.joinpath("size").read_text().strip().endswith("K")
    ]
    if sizes:
        assert bench.last_level_cache_bytes(CPU) == max(sizes)
    monkeypatch.setattr(bench, "cpu_cache_bytes", lambda: 12345 * 2**10)
    assert bench.last_level_cache_bytes(CPU) == 12345 * 2**10
    assert bench.last_level_cache_bytes(META) is None


def test_cpu_cache_bytes_skips_instruction_caches_and_unreadable_entries(tmp_path):
    """An instruction cache never counts, whatever its level; an unreadable entry (first
    here) is skipped, not the end of the reading."""
    write_caches(tmp_path, [(1, "Data", "garbage"), (1, "Data", "48K"), (2, "Instruction", "1M")])
    assert bench.cpu_cache_bytes(tmp_path) == 48 * 2**10


def test_cpu_cache_bytes_without_sysfs_is_unknown(tmp_path):
    """No cache listed (no sysfs, as on macOS): None, not a guess."""
    assert bench.cpu_cache_bytes(tmp_path) is None
    write_caches(tmp_path, [(1, "Instruction", "32K")])
    assert bench.cpu_cache_bytes(tmp_path) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("32768K", 32 * 2**20), ("1G\n", 2**30), ("2g", 2 * 2**30), ("3M", 3 * 2**20), ("4096", 4096)],
)
def test_size_bytes_reads_sysfs_sizes(text, expected):
    assert bench._size_bytes(text) == expected


def test_size_bytes_of_an_empty_size_is_a_valueerror():
    """A ValueError, which cpu_cache_bytes skips."""
    with pytest.raises(ValueError):
        bench._size_bytes(" \n")


def test_check_fits_at_the_boundaries(monkeypatch):
    """float32 needs 80 bytes an element, bfloat16 48: exactly enough fits; the advice
    names the largest size from 2**10 up that fits, or says to free memory."""
    have = {}
    monkeypatch.setattr(bench, "memory_available", lambda device: have[device])
    have[CPU] = 80 * 2**20
    bench.check_fits(20, torch.float32, CPU)  # exactly enough
    with pytest.raises(ValueError, match=r"use max_log2_size <= 10$"):
        have[CPU] = 80 * 2**10
        bench.check_fits(12, torch.float32, CPU)
    with pytest.raises(ValueError, match=r"; free some memory first$"):
        have[CPU] = 80 * 2**9
        bench.check_fits(12, torch.float32, CPU)
    have[META] = 48 * 2**20
    with pytest.raises(ValueError) as info:
        bench.check_fits(22, torch.bfloat16, META)
    assert str(info.value) == (
        "parameter max_log2_size=22 is not allowed on this meta: with dtype='bfloat16' the "
        "measurements need about 0.2 GiB at 2**22 elements (the inputs, the gradient and "
        "eager torch's intermediates), but 0.0 GiB is available; use max_log2_size <= 20"
    )


def test_relative_speed_at_the_boundaries():
    """within is exclusive; a reference time of 0 is refused like a time of 0."""
    assert bench.relative_speed(1.0, 1.5, within=0.5) == "1.5x faster than"
    assert bench.relative_speed(1.0, 1.25, within=0.5) == "about as fast as (within 50%)"
    assert bench.relative_speed(2.0, 1.0) == "2.0x slower than"
    # with a tolerance under 10%, a difference under 10% is shown to two decimals
    assert bench.relative_speed(1.0, 1.04, within=0.01) == "1.04x faster than"
    assert bench.relative_speed(1.04, 1.0, within=0.01) == "1.04x slower than"
    assert bench.relative_speed(1.0, 1.1, within=0) == "1.1x faster than"
    assert bench.relative_speed(2.5, 2.5, within=0) == "as fast as"
    with pytest.raises(ValueError, match="reference_seconds=0"):
        bench.relative_speed(1.0, 0)


def test_format_bytes_at_the_boundaries():
    assert bench.format_bytes(0) == "0 B"
    assert bench.format_bytes(1023) == "1023 B"
    assert bench.format_bytes(1024) == "1 KiB"
    assert bench.format_bytes(2**20) == "1 MiB"
    assert bench.format_bytes(2**30) == "1 GiB"
    with pytest.raises(ValueError, match=r"n=-1 must be >= 0"):
        bench.format_bytes(-1)
