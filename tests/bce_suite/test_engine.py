"""The engine (bce_suite.engine): the task a worker runs, in-process; and a sweep on a real
Dask cluster on loopback: a `dask scheduler` and two `dask worker` processes (free ports,
stopped afterwards), the command with --scheduler, and one worker SIGKILLed mid-sweep:
every run completes once, with the numbers of the same sweep run on the local default
cluster, and the report names the run executed again."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import nbformat
import psutil
import pytest

from bce_suite import engine
from bce_suite.engine import host_of, run_task
from bce_suite.runs import Job

REPO = Path(__file__).resolve().parents[2]
FIXTURES = str(REPO / "tests" / "fixtures" / "notebooks")
DASK = str(Path(sys.executable).parent / "dask")
SWEEP = ["sweep", "01", "--notebooks", FIXTURES, "-p", "x", "1", "2", "3", "4"]
SWEEP += ["-p", "seconds", "3", "--no-progress"]
SQUARE = Path(FIXTURES) / "01_square.ipynb"


def test_host_of_a_worker_address():
    assert host_of("tcp://10.0.0.2:4001") == "10.0.0.2"
    assert host_of("tls://[::1]:8786") == "[::1]"
    assert host_of("") == ""


class FakeFuture:
    """A future whose task never ran: the scheduler gave up on it."""

    def result(self):
        raise RuntimeError("not run")


class FakeClient:
    """Records how the runs are submitted."""

    def __init__(self):
        self.calls = []

    def scheduler_info(self, n_workers=-1):
        return {"workers": {"tcp://10.0.0.2:4001": {"nthreads": 1}}}

    def map(self, func, *iterables, key, pure):
        self.calls.append((func, iterables, key))
        return [FakeFuture() for _ in key]

    def get_events(self, topic):
        return []


def test_the_runs_go_to_the_scheduler_in_one_call_highest_priority_first(tmp_path, monkeypatch):
    """One call: the scheduler queues them all and hands them out in this order; one by one,
    the first few would be assigned to workers as they arrive, behind each other."""
    monkeypatch.setattr(engine, "as_completed", iter)
    jobs = {i: Job(SQUARE, {"x": i}, f"r{i}", priority=p) for i, p in enumerate([1, 9, 5, 9])}
    client, bar = FakeClient(), types.SimpleNamespace(update=lambda: None, write=lambda *a: None)
    done = engine._execute(client, jobs, tmp_path, bar)
    ((func, iterables, keys),) = client.calls
    assert func is run_task
    assert list(iterables[1]) == ["r1", "r3", "r2", "r0"], "by priority, ties in job order"
    assert [k[0] for k in keys] == ["bce-run"] * 4, "one task group"
    assert list(iterables[4]) == [{"10.0.0.2": 1}] * 4
    assert {i: (r.run, r.status, r.error) for i, r in done.items()} == {
        i: (f"r{i}", "failed", "RuntimeError: not run") for i in jobs
    }


@pytest.mark.notebook
def test_the_task_returns_the_executed_notebook_its_results_and_its_page():
    """The task outside Dask: the notebook as text in, everything it made as text out."""
    outcome = run_task(SQUARE.read_text(), "sq5", {"x": 5, "figure": True}, "t")
    assert (outcome.status, outcome.error, outcome.worker) == ("ok", "", "")
    assert json.loads(outcome.results)["square"] == 25 and outcome.seconds > 0
    nb = nbformat.reads(outcome.notebook, as_version=4)
    printed = [o.get("text") for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert "square=25\n" in printed
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert outcome.page.startswith("<!DOCTYPE html>") and "square=25" in outcome.page


@pytest.mark.notebook
def test_a_failing_notebook_is_an_outcome_not_an_exception():
    text = (Path(FIXTURES) / "02_fails.ipynb").read_text()
    outcome = run_task(text, "fails", {"message": "bad input"}, "t")
    assert (outcome.status, outcome.error) == ("failed", "ValueError: bad input")
    assert outcome.results is None
    assert "bad input" in outcome.notebook and outcome.page is not None
    no_results = run_task(SQUARE.read_text(), "sq", {"x": 2}, "t", writes_results=False)
    assert no_results.status == "ok" and no_results.results is None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_tree(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Signal a process and everything it started (kernels have sessions of their own)."""
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    for p in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(sig)
    psutil.wait_procs(family, timeout=10)
    for p in family:
        if p.is_running():
            p.kill()
    proc.wait(timeout=10)


@pytest.fixture
def cluster(tmp_path):
    """A scheduler and two single-thread workers on 127.0.0.1; (address, worker procs)."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{free_port()}"
    # the workers import bce_suite: from the checkout here (an install brings it anywhere);
    # their temp directory is the test's, to see what they leave there
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path / "tmp")}
    log = open(tmp_path / "cluster.log", "w")  # noqa: SIM115 (closed below)
    common = {"env": env, "stdout": log, "stderr": subprocess.STDOUT, "cwd": tmp_path}
    port = address.rsplit(":", 1)[1]
    procs = [
        subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
            **common,
        )
    ]
    worker_args = ["--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"]
    procs += [
        subprocess.Popen([DASK, "worker", address, *worker_args, "--name", f"w{i}"], **common)
        for i in range(2)
    ]
    try:
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address, procs[1:]
    finally:
        for proc in reversed(procs):
            stop_tree(proc)
        log.close()


def worker_addresses(address: str) -> dict[int, str]:
    """The cluster's workers: process id -> address."""
    from distributed import Client

    with Client(address, timeout="30s") as client:
        return {pid: a for a, pid in client.run(os.getpid).items()}


def running_kernel(worker: subprocess.Popen) -> bool:
    """Whether a notebook kernel runs under this `dask worker` process."""
    try:
        family = psutil.Process(worker.pid).children(recursive=True)
        return any("ipykernel" in " ".join(p.cmdline()) for p in family)
    except psutil.Error:
        return False


@pytest.mark.notebook
def test_a_sweep_survives_a_killed_worker(tmp_path, cluster):
    address, workers = cluster
    by_pid = worker_addresses(address)
    out_dir = tmp_path / "cluster"
    cmd = [sys.executable, "-m", "bce_suite", *SWEEP, "--scheduler", address]
    client = subprocess.Popen(
        [*cmd, "--out", str(out_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # mid-sweep: a run complete, and a worker executing another one (its kernel is up)
    deadline = time.monotonic() + 180
    while not (list(out_dir.glob("[!.]*.json")) and any(map(running_kernel, workers))):
        assert time.monotonic() < deadline and client.poll() is None, "no run mid-way"
        time.sleep(0.1)
    victim = next(w for w in workers if running_kernel(w))
    tree = {victim.pid} | {p.pid for p in psutil.Process(victim.pid).children(recursive=True)}
    (lost,) = [a for pid, a in by_pid.items() if pid in tree]
    stop_tree(victim, signal.SIGKILL)
    out, err = client.communicate(timeout=300)
    assert client.returncode == 0, err

    rows = json.loads((out_dir / "sweep.json").read_text())
    assert [(r["x"], r["status"]) for r in rows] == [(x, "ok") for x in (1, 2, 3, 4)]
    names = sorted(p.name for p in out_dir.iterdir() if p.suffix in (".ipynb", ".json"))
    runs = [f"01_square__x={x}__seconds=3.0" for x in (1, 2, 3, 4)]
    assert [r["run"] for r in rows] == runs
    assert names == sorted(
        [f"{r}.ipynb" for r in runs] + [f"{r}.json" for r in runs] + ["summary.json", "sweep.json"]
    ), "every run once, nothing else"
    assert not list(out_dir.glob(".*")), "no temporary files"
    # the killed worker's scratch folder, removed by a later run on this machine
    assert not list((tmp_path / "tmp").glob("bce-run-*")), "no scratch folder left"
    # the run killed mid-way, and any whose result the dead worker held, not yet fetched
    summary = json.loads((out_dir / "summary.json").read_text())
    retried = [r for r in summary if r["retried"]]
    assert 1 <= len(retried) <= 2 and all(r["lost_workers"] == [lost] for r in retried)
    assert not any(r["lost_workers"] for r in summary if not r["retried"])
    index = (out_dir / "index.html").read_text()
    for r in retried:
        line = next(line for line in out.splitlines() if line.startswith(r["run"] + " "))
        assert line.endswith(f"[retried: worker {lost} died before returning it]")
    assert index.count(f"retried: worker {lost} died before returning it") == len(retried)

    # the fixture's own numbers, by hand: the retried runs computed them as a first run would
    assert [(r["square"], r["half"]) for r in rows] == [(x * x, x * x / 2) for x in (1, 2, 3, 4)]
