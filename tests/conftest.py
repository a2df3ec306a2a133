"""Shared fixtures: the session's store of notebook executions, and the files' order."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
import torch
from filelock import FileLock

from bce_suite.execute import error_line, execute
from bce_suite.kernels import threads_per_process
from tests.checkout import find_notebook

# pytest-xdist runs one process per worker, and each starts kernels: give each worker, and
# the kernels it starts (they inherit the environment), its share of the cores, as the
# runner does for its kernels (beside another worker with 2 threads of its own, notebook
# 06's training runs far slower).
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1 and "OMP_NUM_THREADS" not in os.environ:
    _threads = threads_per_process(_workers)
    os.environ["OMP_NUM_THREADS"] = str(_threads)
    torch.set_num_threads(_threads)

# What a test costs in the files' order: a notebook run or a browser page, a plain test.
SLOW_TEST, QUICK_TEST = 10, 0.1
# Files that read the runs at the defaults that each notebook's own file makes (the store's
# executions): they go last, when those runs are done.
READERS = ("test_jupyterlab_as_run.py",)


def pytest_collection_modifyitems(config, items):
    """The files that take longest first (each stays in one piece, in its own order): with
    `--dist loadfile --no-loadscope-reorder` a worker then never picks up a long file near
    the end while the others have finished. A test that runs a notebook or drives a
    browser is counted as 10, any other test as 0.1; the files that read other files'
    executions (READERS) go after all the rest, so that they find them done."""
    cost: Counter = Counter()
    for item in items:
        slow = item.get_closest_marker("notebook") or item.get_closest_marker("browser")
        cost[item.path] += SLOW_TEST if slow else QUICK_TEST
    items.sort(key=lambda item: (item.path.name in READERS, -cost[item.path]))


@dataclass(frozen=True)
class Execution:
    """One execution of a notebook: the executed notebook, its results JSON (None if the
    run stopped before writing it) and, for a run that stopped, the error it stopped on."""

    name: str
    params: dict[str, Any]
    path: Path
    notebook: nbformat.NotebookNode
    results: dict[str, Any] | None
    error: str | None

    def printed(self) -> str:
        """Everything the code cells printed, in order."""
        return "".join(
            o.get("text", "")
            for c in self.notebook.cells
            if c.cell_type == "code"
            for o in c.outputs
        )

    def failed_cell(self) -> nbformat.NotebookNode | None:
        """The cell that raised, if the run stopped."""
        for cell in self.notebook.cells:
            if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                return cell
        return None


class Executions:
    """Notebook runs shared by every test of the session, workers included: each distinct
    (notebook, parameters) runs once, under a file lock in a folder all workers see; the
    others read its executed notebook and results. `executions("04")` is the run at the
    notebook's defaults, the one its committed outputs are compared with."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def key(self, name: str, params: dict[str, Any]) -> str:
        """A file name for one (notebook, parameters): the stem and a digest of the set."""
        stem = find_notebook(name).stem
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
        return f"{stem}-{digest}" if params else f"{stem}-defaults"

    def attempt(self, name: str, **params: Any) -> Execution:
        """The run of `name` with `params` (executed now if no test has run it yet); a run
        that stops is returned with its error, not raised."""
        source = find_notebook(name)
        key = self.key(name, params)
        run = self.folder / key
        done, failure = run / "done.json", run / "failure.json"
        with FileLock(str(self.folder / f"{key}.lock")):
            if not done.exists():
                run.mkdir(exist_ok=True)
                results = run / "results.json"
                failure.unlink(missing_ok=True)  # left by a worker that stopped mid-run
                try:
                    execute(
                        source,
                        run / source.name,
                        {**params, "results_path": str(results)},
                        cwd=run,
                    )
                except Exception as err:  # noqa: BLE001 (a stopped run is an outcome here)
                    failure.write_text(json.dumps({"error": error_line(err)}))
                done.write_text(json.dumps({"name": name, "params": params}))
        results = run / "results.json"
        executed = run / source.name
        if not executed.exists():
            raise RuntimeError(f"{key}: {json.loads(failure.read_text())['error']}")
        return Execution(
            name=source.stem,
            params=params,
            path=executed,
            notebook=nbformat.read(executed, as_version=4),
            results=json.loads(results.read_text()) if results.exists() else None,
            error=json.loads(failure.read_text())["error"] if failure.exists() else None,
        )

    def __call__(self, name: str, **params: Any) -> Execution:
        """The run of `name` with `params`, which must have run to the end."""
        run = self.attempt(name, **params)
        if run.error is not None:
            pytest.fail(f"{run.name} with {params} stopped: {run.error}", pytrace=False)
        return run


@pytest.fixture(scope="session")
def executions(tmp_path_factory) -> Executions:
    """The session's store of notebook runs, one folder shared by all xdist workers."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return Executions(shared / "executions")
