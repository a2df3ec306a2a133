"""Runs as tasks on Dask: on a local cluster the command starts and stops itself, or on
an existing one (`--scheduler ADDRESS`). The client ships each notebook and its
parameters; the task returns the executed notebook and results; the client writes them.

A worker that dies running a task has it executed again elsewhere by the scheduler (and
the result says so); a notebook that fails is a result, never retried.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
from distributed import Client, LocalCluster, WorkerPlugin, as_completed

from bce_suite import resume
from bce_suite.execute import STARTED_TOPIC, error_line, run_task
from bce_suite.kernels import stop_kernels
from bce_suite.runs import Job, RunResult

# The local cluster: one run at a time per worker, handed out as workers free; and no
# dashboard, so none of the sampling that feeds it (a stack sample every 10 ms, ticks every
# 20 ms, memory every 100 ms): 2.8 s of CPU every 20 s, idle, on a 2-core machine; 0.35 s.
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
        hosts[address.split("://")[-1].rsplit(":", 1)[0]] += info.get("nthreads", 1)
    return dict(hosts)


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
    futures = {}
    for i, job in todo.items():
        params = dict(job.params)
        future = client.submit(
            run_task,
            texts[job.notebook],
            job.run,
            params,
            tokens[i],
            hosts,
            job.writes_results,
            # one task group for all runs (Dask groups keys by their first part): the
            # scheduler then queues the runs and hands one to each worker as it frees,
            # where a group per run was assigned to workers at once, leaving one idle
            key=("bce-run", f"{job.run}-{tokens[i]}"),
            pure=False,
        )
        futures[future] = i
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
            client.run(stop_kernels, list(tokens.values()))
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
