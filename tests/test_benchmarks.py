"""The benchmark scripts run end to end at small sizes and print consistent figures."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench(script: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=600,
    )
    return out.stdout


def assert_ratio(ratio: float, num: float, den: float) -> None:
    """ratio (printed to 0.1) is num / den, both printed to 0.01 (so either may read 0.00
    on a busy machine)."""
    assert num >= 0 and den >= 0
    low, high = (num - 0.005) / (den + 0.005), (num + 0.005) / max(den - 0.005, 1e-9)
    assert low - 0.05 <= ratio <= high + 0.05


def test_bench_bce_prints_bandwidths_and_ratios():
    out = bench("bench_bce.py", "--log2-size", "16", "--repeats", "3", "--device", "cpu")
    assert float(re.search(r"copy bandwidth \(the roofline\):\s+([\d.]+) GB/s", out)[1]) > 0
    for mode in ("forward", "forward\\+backward"):
        gbps = dict(re.findall(rf"^{mode}\s+(eager torch|fused)\s+([\d.]+) GB/s", out, re.M))
        ratio = float(re.search(rf"^{mode}\s+fused / eager torch: ([\d.]+)x", out, re.M)[1])
        assert_ratio(ratio, float(gbps["fused"]), float(gbps["eager torch"]))


def test_bench_mlp_training_prints_both_times_and_the_ratio():
    out = bench("bench_mlp_training.py", "--n-samples", "512", "--epochs", "1", "--repeats", "1")
    seed = float(re.search(r"seed's code .*?([\d.]+) s", out)[1])
    fast = float(re.search(r"fast path .*?([\d.]+) s \(", out)[1])
    assert_ratio(float(re.search(r"ratio: ([\d.]+)x", out)[1]), seed, fast)
