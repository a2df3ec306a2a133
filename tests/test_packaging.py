"""pip and conda agree: environment.yml lists pyproject.toml's dependencies and bounds."""

import re
import tomllib
from pathlib import Path

import yaml

from tests.checkout import REPO_ROOT

CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def parse(requirement: str) -> tuple[str, str]:
    name, bound = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(?:>=\s*([\w.]+))?", requirement).groups()
    return CONDA_NAMES.get(name.lower(), name.lower()), bound or ""


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(map(parse, project["dependencies"]))
    for extra in project["optional-dependencies"].values():
        wanted.update(map(parse, extra))
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    listed = dict(parse(d) for d in conda if not d.startswith(("python", "pip")))
    assert listed == wanted
    assert all(b for b in wanted.values()), "every dependency has a lower bound"
    assert not any("<" in r or "==" in r for r in project["dependencies"]), "lower bounds only"
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip_section == ["-e ."], "the package itself comes through pip"


def test_the_package_docstring_names_every_module():
    """bce_helpers/__init__.py's map of the package is complete: a module added is named."""
    import bce_helpers

    modules = {p.stem for p in Path(bce_helpers.__file__).parent.glob("*.py")} - {"__init__"}
    named = set(re.findall(r"``(\w+)``", bce_helpers.__doc__))
    assert modules <= named, f"not named in the docstring: {sorted(modules - named)}"
