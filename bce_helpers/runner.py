"""The suite's command line moved to the tooling package `bce_suite` (it is not what a
notebook imports); these names stay importable from here for existing code."""

from __future__ import annotations

from pathlib import Path

from bce_suite.cli import main
from bce_suite.execute import error_line, execute, strip_run_metadata
from bce_suite.notebooks import CHECKOUT, PATTERN
from bce_suite.notebooks import all_notebooks as _all_notebooks
from bce_suite.notebooks import find_notebook as _find_notebook
from bce_suite.parameters import (
    QUICK_PARAMS,
    ParameterError,
    check_parameters,
    coerce_value,
    declared_parameters,
    grid,
    inspect_parameters,
    run_name,
)
from bce_suite.reports import format_table
from bce_suite.runs import RunResult, headline_numbers

REPO_ROOT = CHECKOUT  # the source checkout (an editable install)
NOTEBOOK_DIR = REPO_ROOT / "notebooks"

__all__ = [
    "NOTEBOOK_DIR",
    "PATTERN",
    "QUICK_PARAMS",
    "REPO_ROOT",
    "ParameterError",
    "RunResult",
    "all_notebooks",
    "check_parameters",
    "coerce_value",
    "declared_parameters",
    "error_line",
    "execute",
    "find_notebook",
    "format_table",
    "grid",
    "headline_numbers",
    "inspect_parameters",
    "main",
    "run_name",
    "strip_run_metadata",
]


def all_notebooks(notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The suite's numbered notebooks, in order (the checkout's by default)."""
    return _all_notebooks(notebook_dir)


def find_notebook(name: str, notebook_dir: Path = NOTEBOOK_DIR) -> Path:
    """A notebook of the checkout by number ('04'), stem or file name."""
    return _find_notebook(name, notebook_dir)
