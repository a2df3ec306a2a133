"""What the slow tests of a new user's set-up share (tests/test_fresh_clone.py,
tests/test_fresh_install.py): when they run, and the environment their commands get."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import pytest

# Set for the commands run inside a fresh clone, whose own test run must not start another
INSIDE = "BCE_INSIDE_FRESH_CLONE"


def slow(opt_in: str) -> Callable:
    """Run the test in CI or with `opt_in`=1 set, never inside the fresh clone, and only
    where git is installed."""

    def mark(test: Callable) -> Callable:
        for condition, reason in (
            (not (os.environ.get("CI") or os.environ.get(opt_in)), f"slow: in CI, or {opt_in}=1"),
            (bool(os.environ.get(INSIDE)), "inside the fresh clone: no recursion"),
            (shutil.which("git") is None, "git is not installed"),
        ):
            test = pytest.mark.skipif(condition, reason=reason)(test)
        return test

    return mark


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without its venv, pytest's and thread-count variables:
    what a new shell would pass on (pip's settings and caches kept)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIRTUAL_ENV", "PYTEST_", "PYTHONPATH", "OMP_NUM_THREADS"))
    }
    return {**env, **extra}
