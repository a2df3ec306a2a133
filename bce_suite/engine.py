"""Runs as tasks on Dask: on a local cluster the command starts and stops itself, or on
an existing one (`--scheduler ADDRESS`). The client ships each notebook and its
parameters; the task (`run_task`) executes it on a worker and returns the executed
notebook, its results and its HTML page; the client writes them.

A worker that dies running a task has it executed again elsewhere by the scheduler (and
the result says so); a notebook that fails is a result, never retried.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
from distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_worker

from bce_suite import kernels, resume
from bce_suite.execute import error_line, execute
from bce_suite.runs import Job, Outcome, RunResult
from bce_suite.scratch import scratch_folder

# Where a worker announces each run it starts (the client counts retries from these).
STARTED_TOPIC = "bce-suite-run-started"
# The local cluster: one run at a time per worker, handed out as workers free; and no
# dashboard, nor the sampling that feeds it (Dask's defaults take a stack sample every
# 10 ms, tick every 20 ms and read memory every 100 ms): an idle worker stays idle.
LOCAL_CLUSTER_CONFIG = {
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}


@contextlib.contextmanager
def dask_client(scheduler: str | None, n_workers: int) -> Iterator:
    """A client of the cluster at `scheduler`, or of a local one of n_workers processes
    (one run at a time each) that is stopped on the way out."""
    if scheduler is not None:
        with Client(scheduler, timeout="30s") as client:
            yield client
        return
    with (
        dask.config.set(LOCAL_CLUSTER_CONFIG),
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
            worker_class="distributed.Nanny",
        ) as cluster,
        Client(cluster) as client,
    ):
        client.register_plugin(IgnoreInterrupt())
        yield client


class IgnoreInterrupt(WorkerPlugin):
    """A worker plugin: local workers leave Ctrl-C to the client, which stops their
    kernels and then the cluster (a terminal sends SIGINT to every process it started)."""

    name = "bce-suite-ignore-interrupt"

    def setup(self, worker: object) -> None:
        """Ignore SIGINT in this worker process."""
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def workers_per_host(client: Client) -> dict[str, int]:
    """How many runs each host executes at once: its kernels share its cores."""
    hosts: Counter[str] = Counter()
    for address, info in client.scheduler_info(n_workers=-1)["workers"].items():
        hosts[host_of(address)] += info.get("nthreads", 1)
    return dict(hosts)


def host_of(address: str) -> str:
    """The host of a worker's address: tcp://10.0.0.2:4001 -> 10.0.0.2."""
    return address.split("://")[-1].rsplit(":", 1)[0]


def run_task(
    notebook_text: str,
    run: str,
    parameters: dict[str, Any],
    token: str,
    workers_per_host: dict[str, int] | None = None,
    writes_results: bool = True,
) -> Outcome:
    """Execute a notebook given as text in a scratch folder of this worker (removed after,
    and any a dead worker left here before it); a failing notebook is an outcome, not an
    exception (so Dask never retries it). Its kernel gets this host's cores shared among
    the runs the host executes at once."""
    worker = _announce(token)
    sharing = (workers_per_host or {}).get(host_of(worker))
    host_threads = kernels.threads_per_process(sharing) if sharing else None
    start = time.perf_counter()
    with scratch_folder() as scratch:
        folder = Path(scratch)
        source, executed = folder / "input.ipynb", folder / f"{run}.ipynb"
        results = folder / f"{run}.json"
        source.write_text(notebook_text)
        params = {**parameters, "results_path": str(results)} if writes_results else parameters
        log = folder / "kernel.log"
        try:
            execute(source, executed, params, folder, token, host_threads, kernel_log=log)
            status, error = "ok", ""
        except Exception as exc:
            status, error = "failed", error_line(exc)
            if not getattr(exc, "ename", None) and log.exists() and log.read_text().strip():
                error += f" (kernel log: {log.read_text().strip().splitlines()[-1]})"
        seconds = time.perf_counter() - start
        page = None
        if executed.exists():
            from bce_suite.offline_html import html_page  # nbconvert: where pages render

            try:  # here, so the workers render pages in parallel; the client retries a failure
                page = html_page(executed)
            except Exception:
                page = None
        return Outcome(
            status=status,
            seconds=seconds,
            notebook=executed.read_text() if executed.exists() else None,
            results=results.read_text() if results.exists() else None,
            error=error,
            worker=worker,
            page=page,
        )


def _announce(token: str) -> str:
    """Log this run's start on the scheduler (it outlives the worker); return the worker."""
    try:
        worker = get_worker()
    except ValueError:  # not on a Dask worker
        return ""
    worker.log_event(STARTED_TOPIC, {"token": token, "worker": worker.address})
    return worker.address


def run_jobs(
    jobs: list[Job],
    out_dir: Path,
    n_workers: int,
    progress: bool,
    scheduler: str | None = None,
) -> list[RunResult]:
    """Execute the jobs not complete in out_dir on Dask; return results in job order."""
    from tqdm.auto import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    resume.clean_stale(out_dir)
    results: dict[int, RunResult] = {}
    todo: dict[int, Job] = {}
    for i, job in enumerate(jobs):
        earlier = resume.completed(out_dir, job)
        if earlier is not None:
            results[i] = earlier
        else:
            if note := resume.replaced(out_dir, job):
                print(f"note: {note}", file=sys.stderr)
            todo[i] = job
    bar = tqdm(
        total=len(jobs),
        initial=len(results),
        desc="runs",
        unit="run",
        disable=not progress,
        file=sys.stderr,
    )
    try:
        if todo:
            with dask_client(scheduler, n_workers) as client:
                results.update(_execute(client, todo, out_dir, bar))
    finally:
        bar.close()
    return [results[i] for i in range(len(jobs))]


def _execute(client: Client, todo: dict[int, Job], out_dir: Path, bar: Any) -> dict[int, RunResult]:
    """Submit every job, write each outcome as it arrives; Ctrl-C cancels the rest."""
    command = uuid.uuid4().hex[:12]
    texts = {job.notebook: job.notebook.read_text() for job in todo.values()}
    hosts = workers_per_host(client)
    tokens = {i: f"{command}-{i}" for i in todo}
    # the highest priority first; all in one call, so the scheduler sees every run at once,
    # queues them as one task group (Dask groups keys by their first part) and hands them
    # out in this order, one to each worker as it frees (runs submitted one by one would
    # be assigned to workers as they arrive, a short run waiting behind a long one)
    order = sorted(todo, key=lambda i: -todo[i].priority)
    submitted = client.map(
        run_task,
        [texts[todo[i].notebook] for i in order],
        [todo[i].run for i in order],
        [dict(todo[i].params) for i in order],
        [tokens[i] for i in order],
        [hosts] * len(order),
        [todo[i].writes_results for i in order],
        key=[("bce-run", f"{todo[i].run}-{tokens[i]}") for i in order],
        pure=False,
    )
    futures = dict(zip(submitted, order, strict=True))
    done: dict[int, RunResult] = {}
    try:
        for future in as_completed(futures):
            i, job = futures[future], todo[futures[future]]
            try:
                result = resume.save(out_dir, job, future.result())
            except Exception as exc:  # the scheduler gave up (KilledWorker): a failed run
                result = RunResult(
                    job.notebook.stem,
                    "failed",
                    0.0,
                    error=error_line(exc),
                    run=job.run,
                    params=job.params,
                )
            done[i] = result
            bar.update()
            bar.write(f"{result.status:>7}  {result.run}  {result.seconds:.1f} s", sys.stderr)
    except KeyboardInterrupt:
        client.cancel(list(futures))
        with contextlib.suppress(Exception):
            client.run(kernels.stop_kernels, list(tokens.values()))
        raise
    starts = defaultdict(list)
    for _, event in client.get_events(STARTED_TOPIC):
        starts[event["token"]].append(event["worker"])
    for i, result in done.items():
        result.lost_workers = starts[tokens[i]][:-1]
    return done


def default_workers() -> int:
    """One local worker per core."""
    return os.cpu_count() or 1
