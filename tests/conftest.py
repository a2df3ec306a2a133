"""Shared fixtures: executing a notebook through papermill into a temporary folder."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
import torch

from bce_suite.execute import execute
from bce_suite.kernels import threads_per_process
from tests.checkout import find_notebook

# pytest-xdist runs one process per worker, and each starts kernels: give each worker, and
# the kernels it starts (they inherit the environment), its share of the cores, as the
# runner does for its kernels (beside another worker with 2 threads of its own, notebook
# 06's training took 8x as long).
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1 and "OMP_NUM_THREADS" not in os.environ:
    _threads = threads_per_process(_workers)
    os.environ["OMP_NUM_THREADS"] = str(_threads)
    torch.set_num_threads(_threads)


def pytest_collection_modifyitems(config, items):
    """The files that take longest first (each stays in one piece, in its own order): with
    `--dist loadfile --no-loadscope-reorder` a worker then never picks up a long file near
    the end while the others have finished. A test that runs a notebook or drives a
    browser is counted as 10, a notebook cell under nbval as 1, any other test as 0.1."""
    cost: Counter = Counter()
    for item in items:
        if item.path.suffix == ".ipynb":
            cost[item.path] += 1
        else:
            slow = item.get_closest_marker("notebook") or item.get_closest_marker("browser")
            cost[item.path] += 10 if slow else 0.1
    items.sort(key=lambda item: -cost[item.path])


@pytest.fixture
def run_notebook(tmp_path):
    """Execute a notebook with parameters; return its results JSON as a dict."""

    def _run(name: str, **params) -> dict:
        notebook = find_notebook(name)
        results = tmp_path / f"{notebook.stem}.json"
        execute(
            notebook,
            tmp_path / notebook.name,
            {**params, "results_path": str(results)},
            cwd=tmp_path,
        )
        return json.loads(Path(results).read_text())

    return _run
