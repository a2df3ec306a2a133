"""benchmarks/bench_mlp_training.py runs end to end at a small size: it times notebook 05
itself, executed (the times it prints are those the notebook's results JSON recorded), and
prints consistent figures: each ratio is the quotient of the two times printed beside it."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "bench_mlp_training.py"
SMALL = ("--n-samples", "256", "--epochs", "1", "--repeats", "1")


def bench(*args: str) -> str:
    """The benchmark's standard output, run as a script."""
    return subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=600,
    ).stdout


def number(pattern: str, text: str) -> float:
    found = re.search(pattern, text, re.M)
    assert found, f"{pattern!r} not in the output:\n{text}"
    return float(found[1])


def assert_quotient(ratio: float, num: float, den: float, places: int) -> None:
    """ratio (printed to 0.1) is num / den, both printed to `places` decimals."""
    half = 0.5 * 10**-places
    low, high = (num - half) / (den + half), (num + half) / max(den - half, 1e-9)
    assert low - 0.05 <= ratio <= high + 0.05, (ratio, num, den)


def check_figures(out: str, loss: str = "bce", graph: bool = False) -> dict[str, float]:
    """The figures of one notebook run, checked against each other; returns them."""
    torchvision = number(r"^FakeData \+ ToTensor, item by item:\s+([\d.]+) s", out)
    ours = number(r"^fake_images, \d+ threads:\s+([\d.]+) s", out)
    assert_quotient(number(r"^data ratio: ([\d.]+)x", out), torchvision, ours, 3)
    guide = number(r"^the guide's code .*?:\s+([\d.]+) s", out)
    figures = {}
    for path, key in (("the lesson's loop", "train"), ("the fast path", "fast")):
        head = rf"^notebook 05, loss={loss}, cuda_graph={graph}, {path}:"
        total = number(rf"{head}\s+([\d.]+) s", out)
        data = number(rf"{head}.*\(([\d.]+) s data", out)
        train = number(rf"{head}.*, ([\d.]+) s training", out)
        assert abs(total - (data + train)) <= 0.011
        ratio = "ratio" if key == "train" else "fast ratio"
        after = out[re.search(head, out, re.M).end() :]
        assert_quotient(number(rf"^{ratio}: ([\d.]+)x the guide's code", after), guide, total, 2)
        figures.update(data=data, **{key: train})
    return figures


def test_bench_mlp_training_times_the_executed_notebook(tmp_path):
    out = bench(*SMALL, "--device", "cpu", "--keep", str(tmp_path))
    assert "256 images, 1 epochs" in out
    figures = check_figures(out)
    assert "cuda_graph=True" not in out, "no graph on the CPU"
    # the times printed are the ones the executed notebook wrote into its results
    (folder,) = tmp_path.iterdir()
    assert folder.name == "bce-graph=False-1"
    results = json.loads((folder / "results.json").read_text())
    assert results["params"]["n_samples"] == 256 and results["params"]["epochs"] == 1
    assert results["data_seconds"] == pytest.approx(figures["data"], abs=0.006)
    assert results["train_seconds"] == pytest.approx(figures["train"], abs=0.006)
    assert results["fast_train_seconds"] == pytest.approx(figures["fast"], abs=0.006)
    executed = (folder / "05_mlp_training.ipynb").read_text()
    assert "zero_grad()" in executed and "optimizer.step()" in executed, "the lesson's loop ran"


def refusal(monkeypatch, capsys, *args: str) -> str:
    """Run the benchmark's main() in this process with `args`; return what it wrote to stderr
    on refusing them (argparse's exit status 2), before printing anything."""
    spec = importlib.util.spec_from_file_location("bench_mlp", BENCH)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_mlp", module)  # its dataclass looks itself up
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", [str(BENCH), *SMALL, *args])
    with pytest.raises(SystemExit) as exit_info:
        module.main()
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2 and out == ""
    return err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_bench_mlp_training_refuses_a_missing_device_before_any_work(monkeypatch, capsys):
    err = refusal(monkeypatch, capsys, "--device", "cuda")
    assert "device='cuda' is not available on this machine" in err


def test_bench_mlp_training_refuses_an_unknown_loss(monkeypatch, capsys):
    err = refusal(monkeypatch, capsys, "--losses", "mse")
    assert "loss must be one of 'bce', 'bce_with_logits', 'fused_bce_with_logits', got 'mse'" in err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bench_mlp_training_on_cuda_times_every_loss_with_the_graph():
    out = bench(*SMALL, "--device", "cuda")
    check_figures(out)
    for loss in ("bce", "bce_with_logits", "fused_bce_with_logits"):
        check_figures(out, loss, graph=True)
        line = re.search(
            rf"^notebook 05, loss={loss}, cuda_graph=True, the fast path: .*$", out, re.M
        )
        assert line and "before the clock" in line[0], out
    assert re.search(r"fused_bce_with_logits trains in [\d.]+x the time of bce_with_logits", out)
