"""Shared fixtures: executing a notebook through papermill into a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bce_helpers.runner import execute, find_notebook


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
