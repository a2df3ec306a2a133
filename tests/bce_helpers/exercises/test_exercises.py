"""Each notebook's exercises as the notebook holds them: collapsed, checked, and right in the
committed outputs. It reads the notebooks, so it belongs with the notebooks' tests."""

from __future__ import annotations

import re

import nbformat
import pytest

from bce_helpers.exercises import EXERCISES
from tests.checkout import find_notebook

NOTEBOOKS_WITH_EXERCISES = ["01", "02", "03", "04", "05", "06", "07", "08"]


@pytest.mark.parametrize("name", NOTEBOOKS_WITH_EXERCISES)
def test_the_notebook_has_exercises_collapsed_and_checked(name):
    nb = nbformat.read(find_notebook(name), as_version=4)
    solutions = [c for c in nb.cells if "### BEGIN SOLUTION" in c.source]
    assert len(solutions) >= 2, "at least two exercises per notebook"
    for cell in solutions:
        assert cell.metadata["jupyter"]["source_hidden"] is True, "collapsed in JupyterLab"
        following = nb.cells[nb.cells.index(cell) + 1]
        call = re.search(r'^check\("(\d\d\.\d)", (\w+)\)$', following.source, re.MULTILINE)
        assert call and call[1].startswith(name) and call[1] in EXERCISES
        assert "nbval-check-output" in following.metadata.get("tags", [])
        shown = "".join(o.get("text", "") for o in following.outputs)
        assert shown.startswith(f"Exercise {call[1]}, ") and ": right. " in shown
