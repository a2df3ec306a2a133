"""The test run's own set-up (tests/conftest.py): threads per worker, the files' order, and
the store of notebook runs the workers share."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import torch

from tests import conftest
from tests.checkout import find_notebook
from tests.conftest import pytest_collection_modifyitems


@pytest.mark.skipif(
    int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) < 2, reason="only under pytest-xdist"
)
def test_each_worker_and_its_kernels_get_their_share_of_the_cores():
    workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    share = max(1, (os.cpu_count() or 1) // workers)  # by hand
    assert os.environ["OMP_NUM_THREADS"] == str(share)  # what kernels started here inherit
    assert torch.get_num_threads() == share


def fake_item(path: str, notebook: bool = False, browser: bool = False) -> SimpleNamespace:
    marks = {name for name, on in (("notebook", notebook), ("browser", browser)) if on}
    return SimpleNamespace(
        path=Path(path), get_closest_marker=lambda name: object() if name in marks else None
    )


def test_the_longest_files_go_first_each_in_one_piece_and_its_own_order():
    units = [fake_item("tests/test_a.py") for _ in range(30)]  # 3.0
    notebook_runs = [fake_item("tests/test_b.py", notebook=True) for _ in range(2)]  # 20
    one_run = [fake_item("tests/test_c.py"), fake_item("tests/test_c.py", notebook=True)]  # 10.1
    one_page = [fake_item("tests/test_d.py", browser=True)]  # 10
    items = units + one_page + notebook_runs + one_run
    pytest_collection_modifyitems(None, items)
    assert items == notebook_runs + one_run + one_page + units


def test_the_files_that_read_other_files_runs_go_last():
    """The browser layer reads the runs at the defaults that each notebook's own file
    makes: behind every other file, however long, it finds them done."""
    pages = [fake_item("tests/notebooks/test_jupyterlab_as_run.py", browser=True) for _ in range(9)]
    units = [fake_item("tests/test_a.py")]
    notebook_runs = [fake_item("tests/notebooks/test_04_pos_weight.py", notebook=True)]
    items = pages + units + notebook_runs
    pytest_collection_modifyitems(None, items)
    assert items == notebook_runs + units + pages


class FakeRuns:
    """Stands in for bce_suite.execute.execute: counts the runs, writes what a run writes
    (the executed notebook; the results JSON unless it fails), raises like papermill."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[dict] = []
        self.fail = fail

    def __call__(self, notebook: Path, output: Path, params: dict, cwd: Path) -> None:
        self.calls.append(params)
        nb = nbformat.read(notebook, as_version=4)
        nbformat.write(nb, output)
        if self.fail:
            error = RuntimeError("stopped")
            error.ename, error.evalue = "ValueError", "parameter rows=0 is not allowed"
            raise error
        Path(params["results_path"]).write_text(json.dumps({"rows": params.get("rows", 3)}))


def test_the_store_runs_each_set_once_for_every_worker(tmp_path, monkeypatch):
    runs = FakeRuns()
    monkeypatch.setattr(conftest, "execute", runs)
    worker_a, worker_b = conftest.Executions(tmp_path), conftest.Executions(tmp_path)
    first = worker_a("02", rows=4)
    again = worker_b("02", rows=4)  # another worker, the same folder: read, not run
    assert len(runs.calls) == 1 and first.results == again.results == {"rows": 4}
    assert again.notebook == nbformat.read(find_notebook("02"), as_version=4)
    defaults = worker_b("02")
    assert len(runs.calls) == 2 and defaults.results == {"rows": 3} and defaults.params == {}
    assert worker_a.key("02", {}) == "02_functional_bce-defaults"
    assert worker_a.key("02", {"rows": 4}) != worker_a.key("02", {"rows": 5})
    assert worker_a.key("02", {"rows": 4, "cols": 2}) == worker_a.key("02", {"cols": 2, "rows": 4})


def test_a_stopped_run_is_kept_with_its_error_and_not_run_again(tmp_path, monkeypatch):
    runs = FakeRuns(fail=True)
    monkeypatch.setattr(conftest, "execute", runs)
    store = conftest.Executions(tmp_path)
    stopped = store.attempt("02", rows=0)
    assert stopped.error == "ValueError: parameter rows=0 is not allowed"
    assert stopped.results is None and stopped.notebook.cells
    assert store.attempt("02", rows=0).error == stopped.error and len(runs.calls) == 1
    with pytest.raises(pytest.fail.Exception, match="stopped: ValueError: parameter rows=0"):
        store("02", rows=0)
