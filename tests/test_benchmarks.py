"""The BCE benchmark runs end to end at small sizes, checks its methods first, and prints
figures that agree with their own times and sizes."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("eager torch", "compiled torch", "eager from scratch", "fused")


def bench(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


def test_bench_bce_prints_bandwidths_from_its_times_and_ratios():
    out = bench(
        "bench_bce.py", "--log2-sizes", "12", "14", "--repeats", "3", "--min-seconds", "0",
        "--device", "cpu",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "every method matches torch's loss and gradient" in text
    assert re.search(r"copy bandwidth \(the roofline\) at 2\^14:\s+[\d.]+ GB/s best", text)
    for log2 in (12, 14):
        block = text.split(f"n = 2^{log2}")[1].split("\nn = ")[0]
        for mode, least in (("forward", 8), ("forward\\+backward", 20)):
            row = (
                rf"^{mode}\s+({'|'.join(METHODS)})\s+([\d.]+) GB/s best.*?([\d.]+) us\s+(\d+) bytes"
            )
            rows = re.findall(row, block, re.M)
            assert [r[0] for r in rows] == list(METHODS)
            micros_of = {}
            for method, value, micros, design in rows:
                # by hand: the least bytes of a separate forward and backward, over the time
                expected = least * 2**log2 / (float(micros) * 1e-6) / 1e9
                assert float(value) == pytest.approx(expected, rel=0.02, abs=0.02)
                fused_design = 12 if mode != "forward" else 8
                assert int(design) == (fused_design if method == "fused" else least)
                micros_of[method] = float(micros)
            ratio = float(re.search(rf"^{mode}\s+fused / eager torch: ([\d.]+)x", block, re.M)[1])
            # a ratio of bandwidths is the inverse ratio of times
            assert ratio == pytest.approx(
                micros_of["eager torch"] / micros_of["fused"], rel=0.05, abs=0.01
            )
    # at the largest size, x * y (the fused pass's traffic without its arithmetic) beside it
    floor_us = float(re.search(r"^x \* y, the same traffic .*: ([\d.]+) us$", text, re.M)[1])
    to_floor = float(
        re.search(r"^forward\+backward\s+fused / \(x \* y\): ([\d.]+)x", text, re.M)[1]
    )
    assert to_floor == pytest.approx(floor_us / micros_of["fused"], rel=0.05, abs=0.01)
    # and, with the C kernel, the same loss through inductor's compiled formulas
    assert "fused path: a C kernel" in text
    inductor_us = float(re.search(r"^fused through inductor .*: ([\d.]+) us$", text, re.M)[1])
    to_inductor = float(
        re.search(r"^forward\+backward\s+fused C kernel / fused through inductor: ([\d.]+)x",
                  text, re.M)[1]
    )  # fmt: skip
    assert to_inductor == pytest.approx(inductor_us / micros_of["fused"], rel=0.05, abs=0.01)


def test_bench_bce_refuses_bad_arguments():
    out = bench("bench_bce.py", "--log2-sizes", "40", "--device", "cpu")
    assert out.returncode == 2 and "--log2-sizes 40 is not allowed: expected 1 to 31" in out.stderr
    out = bench("bench_bce.py", "--min-seconds", "-1", "--device", "cpu")
    assert (
        out.returncode == 2 and "--min-seconds -1.0 is not allowed: expected 0 to 60" in out.stderr
    )
