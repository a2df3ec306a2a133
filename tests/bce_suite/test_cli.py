"""The command line (bce_suite.cli, `bce-notebooks` or `python -m bce_suite`): its
refusals of bad ranges, combinations, grid files and options, in one line with exit
status 2 before any kernel starts (in-process); and `run | sweep | list` end to end on a
local Dask cluster, on the small fixture notebooks of tests/fixtures (one that fails, one
slow and interruptible, one without parameters). Tests marked `notebook` execute; the
others run in `make test-fast` too."""

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

import bce_suite.engine as engine
import bce_suite.notebooks as notebooks
from bce_suite import cli as cli_module
from bce_suite.cli import build_parser, main

CLI = [sys.executable, "-m", "bce_suite"]
FIXTURES = str(Path(__file__).resolve().parents[1] / "fixtures" / "notebooks")


def cli(*args, timeout=300):
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


# --- refused before any run ---------------------------------------------------------


def refused(capsys, *argv: str) -> str:
    """Run the CLI; assert it refused with status 2 and one line; return that line."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err.strip()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "04", "-p", "seed", "-5"],
            "04_pos_weight: parameter seed=-5 is not allowed: "
            "expected an integer >= 0 and <= 4294967295",
        ),
        (
            ["run", "04", "-p", "pos_weight", "0"],
            "04_pos_weight: parameter pos_weight=0.0 is not allowed: "
            "expected a number > 0 and <= 10000",
        ),
        (
            ["run", "01", "-p", "seed", "4294967296"],
            "parameter seed=4294967296 is not allowed: expected an integer >= 0 and <= 4294967295",
        ),
        (
            ["run", "04", "-p", "n_samples", "100", "-p", "positive_fraction", "0.05"],
            "parameters n_samples=100, positive_fraction=0.05 are not allowed together: "
            "the data would hold fewer than 10 positives",
        ),
        (
            ["run", "-p", "seed", "-1"],  # every notebook: the first one refuses
            "01_bce_loss: parameter seed=-1 is not allowed",
        ),
        (
            ["sweep", "05", "-p", "log_every", "5", "500", "-p", "n_samples", "640"],
            "parameters log_every=500, n_samples=640, batch_size=64, epochs=3 are not allowed "
            "together: log_every must not exceed the number of mini-batches",
        ),
        (
            ["run", "04", "-p", "pos_wieght", "3"],
            "04_pos_weight has no parameter 'pos_wieght'; declared: seed, device",
        ),
        (
            ["run", "04", "-p", "steps", "many"],
            "parameter steps: 'many' is not int like its default 500",
        ),
        (
            ["sweep", "04", "-p", "pos_weight", "1", "heavy"],
            "parameter pos_weight: 'heavy' is not float",
        ),
        (  # 2 and 2.0 are the same float: one run, one output, asked for twice
            ["sweep", "04", "-p", "pos_weight", "2", "2.0", "-p", "seed", "1"],
            "two runs would have the same name '04_pos_weight__pos_weight=2.0__seed=1': "
            "{'pos_weight': 2.0, 'seed': 1} and {'pos_weight': 2.0, 'seed': 1}",
        ),
    ],
)
def test_range_and_combination_refusals(tmp_path, capsys, args, message):
    line = refused(capsys, *args, "--out", str(tmp_path / "out"))
    assert message in line
    assert not (tmp_path / "out").exists(), "refused before any run: nothing written"


GRIDS = {
    "syntax": ("parameters:\n  pos_weight: [1, 2\n  lr: 0.1\n", ":3: YAML syntax error: expected"),
    "unknown": ("parameters:\n  pos_wieght: [1, 2]\n", ": 04_pos_weight has no parameter"),
    "empty": ("parameters:\n  pos_weight: []\n", ": no values given for pos_weight"),
    "type": ("parameters:\n  pos_weight: [1, heavy]\n", ": parameter pos_weight: 'heavy' is"),
    "range": ("parameters:\n  pos_weight: [1, -2]\n", ": 04_pos_weight: parameter pos_weight="),
    "fixed": ("parameters:\n  pos_weight: [1]\nfixed:\n  steps: 0\n", "parameter steps=0 is"),
    "list": ("- pos_weight\n", ": a grid is a mapping with the keys `parameters:`"),
    "no_parameters": ("fixed:\n  steps: 10\n", ": needs a `parameters:` mapping"),
}


@pytest.mark.parametrize("kind", list(GRIDS))
def test_malformed_grid_is_one_line_naming_the_file(tmp_path, capsys, kind):
    text, message = GRIDS[kind]
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text)
    line = refused(capsys, "sweep", "04", "--grid", str(path), "--out", str(tmp_path / "out"))
    assert line.startswith(f"error: {path}")
    assert message in line
    assert not (tmp_path / "out").exists()


def test_missing_grid_file(tmp_path, capsys):
    line = refused(capsys, "sweep", "04", "--grid", str(tmp_path / "nope.yaml"))
    missing = tmp_path / "nope.yaml"
    assert line == f"error: {missing}: cannot read the grid file (No such file or directory)"


def test_the_example_grids_pass_the_checks(tmp_path, monkeypatch):
    """The grids shipped in grids/ are accepted: the check, not the runs."""
    seen = []
    monkeypatch.setattr(engine, "run_jobs", lambda jobs, *a, **k: seen.extend(jobs) or [])
    monkeypatch.setattr(cli_module, "write_sweep_report", lambda *a: None)
    grids = Path(__file__).resolve().parents[2] / "grids"
    for notebook, grid in (("04", "04_pos_weight.yaml"), ("05", "05_lr_batch_size.yaml")):
        assert main(["sweep", notebook, "--grid", str(grids / grid), "--out", str(tmp_path)]) == 0
    assert len(seen) == 7 + 6


def test_an_error_after_the_runs_is_not_reported_as_bad_input(tmp_path, monkeypatch):
    def broken_report(out_dir, results):
        raise ValueError("disk full while writing the report")

    monkeypatch.setattr(engine, "run_jobs", lambda jobs, *a, **k: [])
    monkeypatch.setattr(cli_module, "write_run_report", broken_report)
    with pytest.raises(ValueError, match="disk full"):  # a traceback, not "error: ..." and 2
        main(["run", "02", "--out", str(tmp_path)])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--jobs", "0"], "--jobs must be at least 1, got 0"),
        (["--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"], "--jobs sets the local cluster"),
        (["--notebooks", "tests"], "--notebooks tests: no notebooks ([0-9][0-9]_*.ipynb) there"),
    ],
)
def test_option_refusals(tmp_path, capsys, args, message):
    line = refused(capsys, "run", "02", *args, "--out", str(tmp_path / "out"))
    assert message in line and not (tmp_path / "out").exists()


def test_refusals_start_no_cluster(tmp_path, capsys, monkeypatch):
    """Exit status 2 only before any run: the engine is never reached."""
    monkeypatch.setattr(engine, "run_jobs", lambda *a, **k: pytest.fail("a run started"))
    monkeypatch.setattr(notebooks, "CHECKOUT", tmp_path)  # as installed from a wheel
    monkeypatch.chdir(tmp_path)
    line = refused(capsys, "sweep", "04", "-p", "pos_weight", "1", "2")
    assert line.startswith("error: no notebooks ([0-9][0-9]_*.ipynb) found; looked in ")


def test_a_refusal_takes_well_under_a_second_without_torch_or_the_iri_parsers(tmp_path):
    """Checking parameters needs neither torch nor the IRI grammars that jsonschema builds
    for nbformat, both slow to import: a refused command answers at once."""
    probe = (
        "import sys\n"
        "from bce_suite.cli import main\n"
        f"assert main(['run', '04', '-p', 'seed', '-5', '--out', {str(tmp_path / 'o')!r}]) == 2\n"
        "print(sorted(m for m in ('torch', 'rfc3987_syntax', 'nbformat') if sys.modules.get(m)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[0] == "['nbformat']"
    assert "parameter seed=-5 is not allowed" in out.stderr


def test_the_command_is_named_bce_notebooks():
    assert build_parser().prog == "bce-notebooks"
    out = cli("--help")
    assert out.returncode == 0 and out.stdout.startswith("usage: bce-notebooks ")


def test_the_later_notebooks_of_a_run_come_first_to_the_workers(tmp_path):
    args = build_parser().parse_args(["run", "--quick", "--out", str(tmp_path)])
    plan = cli_module.plan_run(args, notebooks.CHECKOUT / "notebooks")
    stems = [job.notebook.stem for job in plan.jobs]
    assert stems == sorted(stems) and len(stems) >= 9, "the report keeps the notebooks' order"
    assert [job.priority for job in plan.jobs] == [int(s[:2]) for s in stems]


def test_installed_as_a_wheel_it_says_where_it_looked(tmp_path, monkeypatch, capsys):
    """No checkout beside the package (a wheel in site-packages), no notebooks here."""
    monkeypatch.setattr(notebooks, "CHECKOUT", tmp_path / "site-packages")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no notebooks ([0-9][0-9]_*.ipynb) found; looked in ")
    for place in (tmp_path / "notebooks", tmp_path, tmp_path / "site-packages" / "notebooks"):
        assert str(place) in err
    assert "give --notebooks DIR" in err and not (tmp_path / "out").exists()
    assert main(["list", "--notebooks", FIXTURES]) == 0
    assert "01_square: a square" in capsys.readouterr().out


# --- end to end -----------------------------------------------------------------------


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
def test_one_worker_starts_the_later_notebooks_first(tmp_path):
    out = cli("run", "--notebooks", FIXTURES, "--out", str(tmp_path), "--jobs", "1")
    finished = [line.split()[1] for line in out.stderr.splitlines() if line.strip().startswith(
        ("ok ", "failed "))]  # fmt: skip
    assert finished == ["03_no_parameters", "02_fails", "01_square"], out.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [row["run"] for row in summary] == ["01_square", "02_fails", "03_no_parameters"]


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
    (tmp_path / "tmp").mkdir()  # the sweeps' temp directory, to see what they leave there
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    proc = subprocess.Popen(
        args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    # a run complete, and the next one's scratch folder made
    _wait_for(lambda: _complete(out_dir) and list((tmp_path / "tmp").glob("bce-run-*")))
    family = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGKILL)  # the client and its local cluster, at once
    for p in family:  # kernels run in sessions of their own
        p.kill()
    proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in _complete(out_dir)}
    assert 1 <= len(done) < 3
    out = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert out.returncode == 0, out.stderr
    rows = json.loads((out_dir / "sweep.json").read_text())
    statuses = {r["run"] + ".ipynb": r["status"] for r in rows}
    for name, mtime in done.items():
        assert statuses[name] == "skipped" and (out_dir / name).stat().st_mtime_ns == mtime
    assert sorted(statuses.values()).count("ok") == 3 - len(done)
    assert [r["square"] for r in rows] == [1, 4, 9]
    assert not list(out_dir.glob(".*")), "no temporary files left"
    assert not list((tmp_path / "tmp").glob("bce-run-*")), "the resumed sweep removed it"


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
