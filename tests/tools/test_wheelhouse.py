"""tools/wheelhouse.py: the requirements a CUDA machine without an index needs, from
pyproject.toml, and what a Python lacks of them."""

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("wheelhouse", ROOT / "tools" / "wheelhouse.py")
wheelhouse = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wheelhouse)


def test_requirements_are_pyprojects_without_what_the_machine_brings():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = project["dependencies"] + extras["suite"] + extras["test"] + extras["keras"]
    got = wheelhouse.requirements()
    assert got == [r for r in declared if not r.startswith(("torch>", "torchvision>", "triton"))]
    names = {wheelhouse.name_of(r) for r in got}
    # the ones the GPU machine lacked, by name
    assert {"dask", "distributed", "latex2mathml", "mutmut", "papermill", "nbval"} <= names
    assert not names & {"torch", "torchvision", "triton"}


def test_names_are_normalised_and_a_bad_one_refused():
    assert wheelhouse.name_of("scikit-learn>=1.3") == "scikit-learn"
    assert wheelhouse.name_of("Pytest_XDist >= 3.8") == "pytest-xdist"
    with pytest.raises(ValueError, match="requirement '>=1' does not start with a package name"):
        wheelhouse.name_of(">=1")


def test_missing_lists_only_what_is_not_installed():
    assert wheelhouse.missing(["pytest>=7", "no-such-package-here>=1"]) == [
        "no-such-package-here>=1"
    ]
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "wheelhouse.py"), "--missing"],
        capture_output=True,
        text=True,
    )
    assert (out.returncode, out.stdout) == (0, "")  # this venv has every declared dependency


def test_a_bad_python_version_is_refused():
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "wheelhouse.py"), "--python-version", "12"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "--python-version 12 is not allowed: expected 3.N" in out.stderr
