"""The BCE benchmark runs end to end at small sizes, checks its methods first, and prints
figures that agree with their own times and sizes."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
        "--rounds", "2", "--device", "cpu", "--goals",
    )  # fmt: skip
    # the CPU's goals are at 2^24: not measured here is a miss, exit status 1
    assert out.returncode == 1, out.stderr[-2000:]
    text = out.stdout
    assert "goals (cpu, float32, forward+backward, median figures):" in text
    assert "2^24 fused / copy: NOT MEASURED (goal 1.0x)" in text
    assert "2^24 fused / eager torch: NOT MEASURED (goal 12.0x)" in text
    assert "2^28" not in text  # the H100's goals are not this device's
    assert "goals missed: 2^24 fused / copy not measured" in text
    assert "fused path: torch.compile (inductor)" in text
    assert text.count("every method matches float64 torch's loss and gradient") == 2
    assert re.search(r"copy bandwidth \(the roofline\) at 2\^14:\s+[\d.]+ GB/s best", text)
    for log2 in (12, 14):
        block = text.split(f"n = 2^{log2}")[1].split("\nn = ")[0]
        for mode, least in (("forward", 8), ("forward\\+backward", 20)):
            row = (
                rf"^{mode}\s+({'|'.join(METHODS)})\s+([\d.]+) GB/s best\s+([\d.]+) median"
                r".*?([\d.]+) us\s+(\d+) bytes"
            )
            rows = re.findall(row, block, re.M)
            assert [r[0] for r in rows] == list(METHODS)
            micros_of, median_of = {}, {}
            for method, value, median, micros, design in rows:
                # by hand: the least bytes of a separate forward and backward, over the time
                expected = least * 2**log2 / (float(micros) * 1e-6) / 1e9
                assert float(value) == pytest.approx(expected, rel=0.02, abs=0.02)
                fused_design = 12 if mode != "forward" else 8
                assert int(design) == (fused_design if method == "fused" else least)
                assert float(median) <= float(value)  # the median is never above the best
                micros_of[method], median_of[method] = float(micros), float(median)
            ratio = float(re.search(rf"^{mode}\s+fused / eager torch: ([\d.]+)x", block, re.M)[1])
            # the ratios compare median bandwidths (each printed to 0.005 GB/s)
            fused, eager = median_of["fused"], median_of["eager torch"]
            assert abs(ratio * eager - fused) <= 0.05 * fused + (ratio + 1 + eager) * 0.005
    # at the largest size, x * y (the fused pass's traffic without its arithmetic) beside it
    floor_us = float(re.search(r"^x \* y, the same traffic .*: ([\d.]+) us$", text, re.M)[1])
    to_floor = float(
        re.search(r"^forward\+backward\s+fused / \(x \* y\): ([\d.]+)x", text, re.M)[1]
    )
    floor_gbps = 20 * 2**14 / (floor_us * 1e-6) / 1e9
    fused = median_of["fused"]
    assert abs(to_floor * floor_gbps - fused) <= 0.05 * fused + 0.005 * (floor_gbps + 1)


def load_bench_bce():
    """benchmarks/bench_bce.py as a module (it is a script, not in a package)."""
    spec = importlib.util.spec_from_file_location("bench_bce", ROOT / "benchmarks" / "bench_bce.py")
    bench_bce = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_bce)
    return bench_bce


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--log2-sizes", "40"], "--log2-sizes 40 is not allowed: expected 1 to 31"),
        (["--min-seconds", "-1"], "--min-seconds -1.0 is not allowed: expected 0 to 60"),
    ],
)
def test_bench_bce_refuses_bad_arguments(monkeypatch, capsys, args, message):
    bench_bce = load_bench_bce()
    monkeypatch.setattr(bench_bce, "warm_memory", pytest.fail)  # refused before any work
    monkeypatch.setattr(sys, "argv", ["bench_bce.py", *args, "--device", "cpu"])
    with pytest.raises(SystemExit) as exit_info:
        bench_bce.main()
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_bench_bce_compares_median_ratios_with_each_goal(capsys):
    bench_bce = load_bench_bce()
    # by hand: at 2^28 fused 3000 against copy 2800 (1.07x: met), eager 700 (4.29x: met),
    # compiled 2800 (1.07x < 1.1x: missed); medians over runs: 3000 of [2900, 3000, 3100]
    figures = {(28, "fused"): [2900, 3000, 3100], (28, "eager torch"): [700],
               (28, "compiled torch"): [2800]}  # fmt: skip
    for log2 in range(18, 28):
        figures[log2, "fused"], figures[log2, "eager torch"] = [100.0], [50.0]
        figures[log2, "compiled torch"] = [30.0]
    misses = bench_bce.check_goals("cuda", "float32", figures, [2800])
    assert misses == ["2^28 fused / compiled torch 1.07x < 1.1x"]
    text = capsys.readouterr().out
    assert "2^28 fused / copy: 1.07x, goal 1.0x, stretch 1.4x: met" in text
    assert "2^28 fused / eager torch: 4.29x, goal 4.0x: met" in text
    assert "2^20 fused / compiled torch: 3.33x, goal 3.0x: met" in text
    figures[21, "eager torch"] = [80.0]  # 1.25x < 1.5x
    assert "2^21 fused / eager torch 1.25x < 1.5x" in bench_bce.check_goals(
        "cuda", "float32", figures, [2800]
    )
    assert bench_bce.check_goals("cuda", "bfloat16", {(28, "fused"): [2500]}, [2800]) == [
        "2^28 fused / copy 0.89x < 1.0x"
    ]
    # the CPU's goals at 2^24, by hand: 1500 / 1400 = 1.07x copy (met), 1500 / 120 = 12.5x
    # eager torch (met); 1500 / 130 = 11.5x (missed)
    cpu = {(24, "fused"): [1500], (24, "eager torch"): [120]}
    assert bench_bce.check_goals("cpu", "float32", cpu, [1400]) == []
    assert "2^24 fused / eager torch: 12.50x, goal 12.0x: met" in capsys.readouterr().out
    cpu[24, "eager torch"] = [130]
    assert bench_bce.check_goals("cpu", "float32", cpu, [1400]) == [
        "2^24 fused / eager torch 11.54x < 12.0x"
    ]
    assert bench_bce.check_goals("cpu", "bfloat16", cpu, [1400]) == []
    assert "none set for this device and dtype" in capsys.readouterr().out
