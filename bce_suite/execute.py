"""Executing one notebook through papermill: in place (refresh, the tests), or as a
task on a Dask worker that gets the notebook as text and returns what it produced."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from bce_suite import kernels

# Per-run noise papermill and Jupyter leave in a notebook: times, paths, widget state.
NOISY_METADATA = ("papermill", "execution", "widgets")
# Where a worker announces each run it starts (the client counts retries from these).
STARTED_TOPIC = "bce-suite-run-started"


def strip_run_metadata(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove timings, paths and widget state, and join printed text that the kernel
    happened to flush in pieces, so committed diffs stay readable."""
    for key in NOISY_METADATA:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in NOISY_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = join_streams(cell.outputs)
    return nb


def join_streams(outputs: list) -> list:
    """Merge consecutive stream outputs of the same stream (stdout or stderr)."""
    joined: list = []
    for out in outputs:
        prev = joined[-1] if joined else None
        if (
            prev is not None
            and out.get("output_type") == "stream"
            and prev.get("output_type") == "stream"
            and prev.get("name") == out.get("name")
        ):
            prev["text"] = "".join(prev["text"]) + "".join(out["text"])
        else:
            joined.append(out)
    return joined


def execute(
    notebook: Path,
    output: Path,
    parameters: dict[str, Any] | None = None,
    cwd: Path | None = None,
    token: str = "",
    threads: int | None = None,
    kernel_log: Path | None = None,
) -> None:
    """Execute one notebook into `output` (written atomically), raising on a failed cell.

    A failed run still writes its executed notebook (the error is in it); an interrupted
    one (Ctrl-C) writes nothing. Its kernel registers under `token` (see kernels)."""
    import papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.stem}.", suffix=".ipynb")
    os.close(fd)
    try:
        try:
            papermill.execute_notebook(
                str(notebook),
                tmp,
                parameters=parameters or {},
                cwd=str(cwd) if cwd else None,
                progress_bar=False,
                kernel_name="python3",
                kernel_manager_class=kernels.manager_class(
                    token, threads, str(kernel_log) if kernel_log else None
                ),
            )
        except Exception:  # a failed cell: keep the executed notebook, then raise
            _keep(tmp, output)
            raise
        _keep(tmp, output)
    finally:
        kernels.forget(token)
        Path(tmp).unlink(missing_ok=True)


def _keep(tmp: str, output: Path) -> None:
    if Path(tmp).stat().st_size:
        nbformat.write(strip_run_metadata(nbformat.read(tmp, as_version=4)), tmp)
        os.replace(tmp, output)


def error_line(exc: BaseException) -> str:
    """One line saying why a run failed (the notebook's own exception, not a traceback)."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}".splitlines()[0]
    return (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0]


@dataclass
class Outcome:
    """What one task returns to the client: the executed notebook and results as text."""

    status: str  # "ok" or "failed"
    seconds: float
    notebook: str | None  # the executed notebook (JSON text), None if it never ran
    results: str | None  # the results JSON the notebook wrote, None if it wrote none
    error: str = ""
    worker: str = ""
    page: str | None = None  # the executed notebook as an HTML page, rendered on the worker


def run_task(
    notebook_text: str,
    run: str,
    parameters: dict[str, Any],
    token: str,
    workers_per_host: dict[str, int] | None = None,
    writes_results: bool = True,
) -> Outcome:
    """Execute a notebook given as text in a scratch folder of this worker; a failing
    notebook is an outcome, not an exception (so Dask never retries it). Its kernel gets
    this host's cores shared among the runs the host executes at once."""
    worker = _announce(token)
    sharing = (workers_per_host or {}).get(_host(worker))
    host_threads = kernels.threads_per_process(sharing) if sharing else None
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bce-run-") as scratch:
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
            from bce_suite.reports import html_page

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
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not on a Dask worker
        return ""
    worker.log_event(STARTED_TOPIC, {"token": token, "worker": worker.address})
    return worker.address


def _host(address: str) -> str:
    return address.split("://")[-1].rsplit(":", 1)[0]
