"""`python -m bce_helpers run | sweep | list` end to end, on small parameters (the tests
that execute notebooks are marked `notebook`; the others run in `make test-fast` too)."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from bce_helpers.runner import check_parameters, coerce_value, find_notebook, grid, run_name

CLI = [sys.executable, "-m", "bce_helpers"]
SMALL_04 = ["-p", "steps", "150", "-p", "n_samples", "200"]


def cli(*args, cwd=None, timeout=300):
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False
    )


def test_values_are_typed_from_the_declared_defaults():
    nb = find_notebook("05")
    typed = check_parameters(nb, {"epochs": "2", "lr": "1e-3", "loss": "bce", "seed": 7})
    assert typed == {"epochs": 2, "lr": 0.001, "loss": "bce", "seed": 7}
    assert isinstance(typed["lr"], float) and isinstance(typed["epochs"], int)
    assert coerce_value("results_path", "r.json", None) == "r.json"
    assert coerce_value("pos_weight", 3, 1.0) == 3.0
    with pytest.raises(ValueError, match=r"parameter epochs: '2.5' is not int like its default 3"):
        check_parameters(nb, {"epochs": "2.5"})
    with pytest.raises(ValueError, match=r"has no parameter 'epoch'; declared: seed, device"):
        check_parameters(nb, {"epoch": "2"})


def test_grid_and_run_names():
    combos = grid({"lr": [0.1, 0.01], "batch_size": [32, 64]})
    assert combos == [
        {"lr": 0.1, "batch_size": 32},
        {"lr": 0.1, "batch_size": 64},
        {"lr": 0.01, "batch_size": 32},
        {"lr": 0.01, "batch_size": 64},
    ]
    assert run_name("04_pos_weight", {"pos_weight": 2.0}) == "04_pos_weight__pos_weight=2.0"
    assert run_name("x", {"p": "a/b c"}) == "x__p=a_b_c"


def test_list_shows_every_notebook_and_its_defaults():
    out = cli("list")
    assert out.returncode == 0
    assert "04_pos_weight: `pos_weight`: weighting the positives" in out.stdout
    assert "pos_weight = 3.0" in out.stdout and 'framework = "torch"' in out.stdout


@pytest.mark.notebook  # executes notebooks
def test_run_writes_results_and_reports(tmp_path):
    out = cli("run", "02", "03", "--quick", "--out", str(tmp_path), "--jobs", "2", "--no-progress")
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [(s["run"], s["status"]) for s in summary] == [
        ("02_functional_bce", "ok"),
        ("03_bce_with_logits", "ok"),
    ]
    for s in summary:
        results = json.loads((tmp_path / f"{s['run']}.json").read_text())
        for key, value in s["numbers"].items():
            assert results[key] == value
        assert (tmp_path / f"{s['run']}.html").read_text().startswith("<!DOCTYPE html>")
    loss = json.loads((tmp_path / "02_functional_bce.json").read_text())["functional_loss"]
    assert f"functional_loss={loss:.4g}" in (tmp_path / "summary.md").read_text()
    assert f"functional_loss={loss:.4g}" in out.stdout
    index = (tmp_path / "index.html").read_text()
    assert (
        '<a href="02_functional_bce.html">' in index
        and '<a href="03_bce_with_logits.html">' in index
    )


def test_unknown_parameter_and_bad_type_fail_before_any_kernel(tmp_path):
    out = cli("run", "04", "-p", "pos_wieght", "3", "--out", str(tmp_path / "a"))
    assert out.returncode == 2
    assert "04_pos_weight has no parameter 'pos_wieght'; declared: seed, device" in out.stderr
    out = cli("run", "04", "-p", "steps", "many", "--out", str(tmp_path / "b"))
    assert out.returncode == 2
    assert "parameter steps: 'many' is not int like its default 500" in out.stderr
    out = cli("sweep", "04", "-p", "pos_weight", "1", "heavy", "--out", str(tmp_path / "c"))
    assert out.returncode == 2 and "parameter pos_weight: 'heavy' is not float" in out.stderr
    assert not any(tmp_path.iterdir()), "nothing ran, nothing was written"


def test_runs_never_write_into_notebooks():
    out = cli("run", "02", "--out", "notebooks/x")
    assert out.returncode == 2 and "runs never write there" in out.stderr


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
@pytest.mark.notebook  # executes notebooks
def test_sweep_with_a_failing_run_among_good_ones(tmp_path):
    # device="mps" passes the spec but fails in the notebook where there is no MPS
    args = ["sweep", "04", "-p", "device", "cpu", "mps", *SMALL_04, "--out", str(tmp_path)]
    out = cli(*args, "--jobs", "2", "--no-progress")
    assert out.returncode == 1
    rows = {r["device"]: r for r in json.loads((tmp_path / "sweep.json").read_text())}
    assert rows["cpu"]["status"] == "ok" and rows["mps"]["status"] == "failed"
    assert rows["mps"]["error"].startswith("ValueError: parameter device='mps' is not available")
    good = json.loads(
        (tmp_path / "04_pos_weight__device=cpu__steps=150__n_samples=200.json").read_text()
    )
    assert rows["cpu"]["optimal_logit_theory"] == good["optimal_logit_theory"]
    assert good["optimal_logit_theory"] == pytest.approx(math.log(3 * 0.2 / 0.8))
    assert "FAILED 04_pos_weight__device=mps" in out.stderr
    assert len(out.stderr.split("ValueError: parameter device='mps'")) == 2, "one line, once"
    csv_lines = (tmp_path / "sweep.csv").read_text().splitlines()
    assert csv_lines[0].startswith("run,status,seconds,device,steps,n_samples,")
    assert len(csv_lines) == 3 and (tmp_path / "sweep.png").stat().st_size > 0


def _wait_for(predicate, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.notebook  # executes notebooks
def test_a_killed_sweep_resumes_without_rerunning_complete_runs(tmp_path):
    args = [*CLI, "sweep", "04", "-p", "pos_weight", "1", "2", "3", *SMALL_04]
    args += ["--out", str(tmp_path), "--jobs", "1", "--no-progress"]
    proc = subprocess.Popen(
        args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def complete():
        return [p for p in tmp_path.glob("*.json") if p.with_suffix(".ipynb").exists()]

    _wait_for(lambda: len(complete()) >= 1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in complete()}
    assert 1 <= len(done) < 3
    out = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    rows = json.loads((tmp_path / "sweep.json").read_text())
    statuses = {r["run"] + ".json": r["status"] for r in rows}
    for name, mtime in done.items():
        assert statuses[name] == "skipped" and (tmp_path / name).stat().st_mtime_ns == mtime
    assert sorted(statuses.values()).count("ok") == 3 - len(done)
    assert not list(tmp_path.glob(".*.ipynb")), "no temporary files left"


@pytest.mark.notebook  # executes notebooks
def test_ctrl_c_stops_and_keeps_no_partial_outputs(tmp_path):
    args = [*CLI, "sweep", "04", "-p", "pos_weight", "1", "2", "3", *SMALL_04]
    args += ["--out", str(tmp_path), "--jobs", "1", "--no-progress"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def complete():
        return [p for p in tmp_path.glob("[!.]*.json") if p.with_suffix(".ipynb").exists()]

    # one run complete and the next one executing: then interrupt
    _wait_for(lambda: len(complete()) == 1 and len(list(tmp_path.glob(".*.ipynb"))) == 1)
    time.sleep(1.0)  # its kernel is up and running cells
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    kept = list(tmp_path.glob("*.json"))
    assert [p.name for p in kept] == [p.name for p in complete()] and len(kept) == 1
    assert len(list(tmp_path.glob("*.ipynb"))) == 1, "only the complete run's notebook"
    assert not list(tmp_path.glob(".*")), "no temporary files left"
