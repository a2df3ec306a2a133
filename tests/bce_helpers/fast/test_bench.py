"""bench: timing calls, bytes and GB/s, cache and memory sizes, and the refusal of a size the
device cannot hold."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import pytest
import torch

from bce_helpers.fast import bench


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


def test_cpu_cache_bytes_reads_the_largest_data_level(tmp_path):
    for index, (level, kind, size) in enumerate(
        [
            (1, "Data", "48K"),
            (1, "Instruction", "32K"),
            (2, "Unified", "2048K"),
            (3, "Unified", "32M"),
        ]
    ):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        (folder / "level").write_text(f"{level}\n")
        (folder / "type").write_text(f"{kind}\n")
        (folder / "size").write_text(f"{size}\n")
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
