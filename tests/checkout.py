"""The checkout's notebooks, for tests: the suite's lookups bound to this repository."""

from __future__ import annotations

from pathlib import Path

from bce_suite import notebooks

REPO_ROOT = notebooks.CHECKOUT
NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def all_notebooks() -> list[Path]:
    """The checkout's numbered notebooks, in order."""
    return notebooks.all_notebooks(NOTEBOOK_DIR)


def find_notebook(name: str) -> Path:
    """A notebook of the checkout by number ('04'), stem or file name."""
    return notebooks.find_notebook(name, NOTEBOOK_DIR)
