"""The test run's own set-up (tests/conftest.py): threads per worker and the files' order."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

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
    pages = [fake_item("tests/notebooks/test_jupyterlab.py", browser=True) for _ in range(9)]
    units = [fake_item("tests/test_a.py")]
    notebook_runs = [fake_item("tests/notebooks/test_04_pos_weight.py", notebook=True)]
    items = pages + units + notebook_runs
    pytest_collection_modifyitems(None, items)
    assert items == notebook_runs + units + pages


def test_threads_per_process_shares_the_cores_and_never_gives_none():
    from bce_suite.kernels import threads_per_process

    cores = os.cpu_count() or 1
    assert threads_per_process(1) == cores
    assert threads_per_process(cores) == 1
    assert threads_per_process(4 * cores) == 1
