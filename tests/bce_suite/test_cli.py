"""`python -m bce_suite run | sweep | list` end to end on a local Dask cluster, on the
small fixture notebooks of tests/fixtures (one that fails, one slow and interruptible, one
without parameters); the lessons' parameters are checked, not run (tests marked
`notebook` execute; the others run in `make test-fast` too)."""

import contextlib
import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from bce_suite.parameters import check_parameters, coerce_value, grid, run_name
from tests.checkout import find_notebook

CLI = [sys.executable, "-m", "bce_suite"]
FIXTURES = str(Path(__file__).resolve().parents[1] / "fixtures" / "notebooks")


def cli(*args, timeout=300):
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False
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


def test_runs_never_write_into_notebooks():
    out = cli("run", "02", "--out", "notebooks/x")
    assert out.returncode == 2 and "runs never write there" in out.stderr


@pytest.mark.notebook  # executes (fixture) notebooks on a local cluster
def test_run_with_a_failing_notebook_among_good_ones(tmp_path):
    """01 (parameters, results), 02 (raises), 03 (no parameters cell): exit status 1."""
    out = cli("run", "--notebooks", FIXTURES, "--out", str(tmp_path), "--jobs", "2")
    assert out.returncode == 1, out.stderr
    summary = {s["run"]: s for s in json.loads((tmp_path / "summary.json").read_text())}
    assert {r: s["status"] for r, s in summary.items()} == {
        "01_square": "ok",
        "02_fails": "failed",
        "03_no_parameters": "ok",
    }
    results = json.loads((tmp_path / "01_square.json").read_text())
    assert results["square"] == 3 * 3 and summary["01_square"]["numbers"] == {
        "square": 9,
        "half": 4.5,
    }
    assert results["params"] == {"x": 3, "seconds": 0.0, "seed": 0}
    assert summary["02_fails"]["error"] == "ValueError: boom"
    assert "FAILED 02_fails: ValueError: boom" in out.stderr
    assert (
        "square=9, half=4.5" in out.stdout
        and "square=9, half=4.5" in (tmp_path / "summary.md").read_text()
    )
    assert (
        not (tmp_path / "02_fails.json").exists()
        and not (tmp_path / "03_no_parameters.json").exists()
    )
    executed = json.loads((tmp_path / "02_fails.ipynb").read_text())
    assert "ValueError" in json.dumps(executed["cells"][-1]["outputs"]), "the error is in it"
    index = (tmp_path / "index.html").read_text()
    for run in summary:
        assert f"<a href='{run}.html'>{run}</a>" in index
        assert (tmp_path / f"{run}.html").read_text().startswith("<!DOCTYPE html>")
    assert "Kernel is running over TCP" not in out.stderr and "IPKernelApp" not in out.stderr
    assert "Passed unknown parameter" not in out.stderr


@pytest.mark.notebook
def test_resume_is_keyed_on_the_parameters_recorded_not_the_name(tmp_path):
    out = cli("run", "01", "--notebooks", FIXTURES, "--out", str(tmp_path), "--jobs", "1")
    assert out.returncode == 0, out.stderr
    first = (tmp_path / "01_square.json").stat().st_mtime_ns
    again = ["--notebooks", FIXTURES, "--out", str(tmp_path), "--jobs", "1"]
    out = cli("run", "01", "-p", "seed", "9", *again)
    assert out.returncode == 0, out.stderr
    assert "01_square in" in out.stderr and "ran with seed=0: running it again with seed=9" in (
        out.stderr
    )
    (row,) = json.loads((tmp_path / "summary.json").read_text())
    assert row["status"] == "ok" and row["numbers"]["square"] == 3 * 3 + 9
    assert json.loads((tmp_path / "01_square.json").read_text())["params"]["seed"] == 9
    assert (tmp_path / "01_square.json").stat().st_mtime_ns != first
    out = cli("run", "01", "-p", "seed", "9", *again)
    (row,) = json.loads((tmp_path / "summary.json").read_text())
    assert out.returncode == 0 and row["status"] == "skipped" and row["numbers"]["square"] == 18


def _wait_for(predicate, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _complete(folder: Path) -> list[Path]:
    return [p for p in folder.glob("[!.]*.ipynb") if p.with_suffix(".json").exists()]


@pytest.mark.notebook
def test_a_killed_sweep_resumes_without_rerunning_complete_runs(tmp_path):
    out_dir = tmp_path / "out"
    args = [*CLI, "sweep", "01", "--notebooks", FIXTURES, "-p", "x", "1", "2", "3"]
    args += ["-p", "seconds", "1.5", "--out", str(out_dir), "--jobs", "1", "--no-progress"]
    proc = subprocess.Popen(
        args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _wait_for(lambda: len(_complete(out_dir)) >= 1)
    family = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGKILL)  # the client and its local cluster, at once
    for p in family:  # kernels run in sessions of their own
        p.kill()
    proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in _complete(out_dir)}
    assert 1 <= len(done) < 3
    out = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    rows = json.loads((out_dir / "sweep.json").read_text())
    statuses = {r["run"] + ".ipynb": r["status"] for r in rows}
    for name, mtime in done.items():
        assert statuses[name] == "skipped" and (out_dir / name).stat().st_mtime_ns == mtime
    assert sorted(statuses.values()).count("ok") == 3 - len(done)
    assert [r["square"] for r in rows] == [1, 4, 9]
    assert not list(out_dir.glob(".*")), "no temporary files left"


def _slow_sweep(out_dir: Path, pid_file: Path) -> list[str]:
    """A sweep of the fixture's slow notebook: a quick run, then one asleep for 600 s."""
    args = [*CLI, "sweep", "01", "--notebooks", FIXTURES, "-p", "seconds", "0", "600"]
    return args + ["-p", "pid_path", str(pid_file), "--out", str(out_dir), "--jobs", "1"]


def _slow_kernel(out_dir: Path, pid_file: Path) -> psutil.Process:
    """Wait until the quick run is complete (its kernel gone) and the slow one's kernel is
    asleep in its cell; return that kernel."""

    def kernel():
        if len(_complete(out_dir)) != 1 or not pid_file.exists() or not pid_file.read_text():
            return None
        pid = int(pid_file.read_text())
        return psutil.Process(pid) if psutil.pid_exists(pid) else None

    _wait_for(kernel)
    found = kernel()
    time.sleep(0.5)  # sleeping in its cell
    return found


def _assert_stopped_cleanly(exit_code: int, err: str, kernel: psutil.Process, out_dir: Path):
    """Exit 130, the slow run's kernel stopped, only the complete run's files kept."""
    assert exit_code == 130, err
    assert "interrupted: tasks cancelled, kernels stopped" in err
    kernel.wait(timeout=30)  # the slow run's kernel is gone (psutil raises if it is not)
    assert not kernel.is_running()
    (kept,) = _complete(out_dir)
    assert json.loads(kept.with_suffix(".json").read_text())["params"]["seconds"] == 0.0
    # the complete run's notebook, results and page (rendered on the worker), nothing else
    expected = [kept.name, kept.stem + ".json", kept.stem + ".html"]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(expected)


@pytest.mark.notebook
def test_ctrl_c_cancels_stops_the_kernel_and_keeps_no_partial_outputs(tmp_path):
    out_dir, pid_file = tmp_path / "out", tmp_path / "kernel.pid"
    args = [*_slow_sweep(out_dir, pid_file), "--no-progress"]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    kernel = _slow_kernel(out_dir, pid_file)
    proc.send_signal(signal.SIGINT)  # to the command alone
    _, err = proc.communicate(timeout=60)
    _assert_stopped_cleanly(proc.returncode, err, kernel, out_dir)


@pytest.mark.notebook
def test_ctrl_c_typed_in_a_terminal_stops_the_sweep_as_cleanly(tmp_path):
    """A terminal sends Ctrl-C's SIGINT to its whole foreground process group: the command
    and the local cluster's worker processes at once (kernels run in sessions of their own).
    Here the command runs in a pseudo-terminal and gets Ctrl-C typed, with the progress bar."""
    out_dir, pid_file = tmp_path / "out", tmp_path / "kernel.pid"
    args = _slow_sweep(out_dir, pid_file)
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the command, with the pseudo-terminal as its terminal
        os.execv(args[0], args)
    output: list[bytes] = []

    def read_terminal():
        with contextlib.suppress(OSError):  # EIO once the command has exited
            while chunk := os.read(terminal, 4096):
                output.append(chunk)

    exit_code: list[int] = []

    def exited():
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            exit_code.append(os.waitstatus_to_exitcode(status))
        return exit_code

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        kernel = _slow_kernel(out_dir, pid_file)
        os.write(terminal, b"\x03")  # Ctrl-C, as typed
        _wait_for(exited, timeout=60)
    except BaseException:
        if not exit_code:
            os.kill(pid, signal.SIGKILL)
        raise
    reader.join(timeout=10)
    os.close(terminal)
    text = b"".join(output).decode(errors="replace")
    _assert_stopped_cleanly(exit_code[0], text, kernel, out_dir)
