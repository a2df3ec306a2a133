"""Packaging: the extras match what each part imports (the notebooks and the library: the
base dependencies; the command and its Dask workers: `suite`; the tests: `test`; `dev`:
both), and pip and conda agree: environment.yml lists pyproject.toml's dependencies and
bounds."""

import ast
import importlib.metadata
import json
import re
import sys
import tomllib
from pathlib import Path

import yaml

from tests.checkout import REPO_ROOT

CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name
PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
FIRST_PARTY = {"bce_helpers", "bce_suite", "tests"}
# Imported only where CUDA is, and installed there with torch (a dependency of its wheels)
WITH_TORCH = {"triton"}


def normalized(name: str) -> str:
    """A distribution's name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(requirement: str) -> tuple[str, str]:
    name, bound = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(?:>=\s*([\w.]+))?", requirement).groups()
    return normalized(CONDA_NAMES.get(name.lower(), name)), bound or ""


def requirements(*extras: str) -> dict[str, str]:
    """Name -> lower bound of the base dependencies and these extras (self-references
    such as bce-helpers[suite,test] followed)."""
    wanted = dict(map(parse, PROJECT["dependencies"]))
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in PROJECT["optional-dependencies"][extra]:
            if own := re.fullmatch(rf"{PROJECT['name']}\[([\w,]+)\]", requirement):
                todo += own.group(1).split(",")
            else:
                wanted.update([parse(requirement)])
    return wanted


def third_party_imports(files: list[Path]) -> dict[str, str]:
    """Top-level module -> a file importing it, for every import that is neither the
    standard library nor the project's own (module level and inside functions alike)."""
    found = {}
    for path in files:
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text())["cells"]
            sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        else:
            sources = [path.read_text()]
        for source in sources:
            lines = [line for line in source.splitlines() if line.lstrip()[:1] not in "%!"]
            for node in ast.walk(ast.parse("\n".join(lines))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                        found.setdefault(top, str(path.relative_to(REPO_ROOT)))
    return found


def undeclared(imports: dict[str, str], declared: dict[str, str]) -> list[str]:
    """The imports no declared distribution provides, each with a file that imports it."""
    providers = importlib.metadata.packages_distributions()
    return [
        f"{module} ({where})"
        for module, where in sorted(imports.items())
        if module not in WITH_TORCH
        and not {normalized(d) for d in providers.get(module, [])} & set(declared)
    ]


def files(*patterns: str) -> list[Path]:
    return sorted(p for pattern in patterns for p in REPO_ROOT.glob(pattern))


def test_the_notebooks_and_the_library_need_only_the_base_dependencies():
    imports = third_party_imports(files("bce_helpers/**/*.py", "notebooks/*.ipynb"))
    assert {"torch", "matplotlib", "sklearn"} <= set(imports), "the imports are read"
    keras_is_optional = {k: v for k, v in imports.items() if k != "keras"}
    assert undeclared(keras_is_optional, requirements()) == []
    assert undeclared(imports, requirements("keras")) == []


def test_the_command_and_its_workers_need_only_the_suite_extra():
    imports = third_party_imports(files("bce_suite/**/*.py"))
    assert {"papermill", "dask", "distributed", "zmq"} <= set(imports)
    assert undeclared(imports, requirements("suite")) == []


def test_the_tests_need_only_the_test_extra_besides_the_suite():
    imports = third_party_imports(files("tests/**/*.py"))
    assert {"pytest", "hypothesis", "psutil"} <= set(imports)
    assert undeclared(imports, requirements("suite", "test")) == []


def test_dev_is_the_suite_and_the_tests_and_the_extras_are_apart():
    extras = PROJECT["optional-dependencies"]
    assert extras["dev"] == [f"{PROJECT['name']}[suite,test]"]
    assert requirements("dev") == requirements("suite", "test")
    suite, test = (dict(map(parse, extras[e])) for e in ("suite", "test"))
    assert not set(suite) & set(test), "a package in both: it belongs to one of them"
    assert not {"pytest", "playwright", "mutmut", "ruff"} & set(suite), "workers need none"


def test_an_install_holds_every_package_and_subpackage():
    """A wheel carries what setuptools finds: each package folder must match an include."""
    import fnmatch

    include = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    packages = [
        ".".join(init.parent.relative_to(REPO_ROOT).parts)
        for top in ("bce_helpers", "bce_suite")
        for init in sorted((REPO_ROOT / top).rglob("__init__.py"))
    ]
    assert {"bce_helpers.fast", "bce_helpers.exercises", "bce_suite"} <= set(packages)
    left_out = [p for p in packages if not any(fnmatch.fnmatchcase(p, i) for i in include)]
    assert left_out == []


def test_the_command_has_one_name():
    assert PROJECT["scripts"] == {"bce-notebooks": "bce_suite.cli:main"}
    assert (REPO_ROOT / "bce_suite" / "__main__.py").is_file()


def test_environment_yml_matches_pyproject():
    wanted = requirements(*PROJECT["optional-dependencies"])
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    listed = dict(parse(d) for d in conda if not d.startswith(("python", "pip")))
    assert listed == wanted
    assert all(b for b in wanted.values()), "every dependency has a lower bound"
    every = [*PROJECT["dependencies"], *sum(PROJECT["optional-dependencies"].values(), [])]
    assert not any("<" in r or "==" in r for r in every), "lower bounds only"
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip_section == ["-e ."], "the package itself comes through pip"


def test_the_package_docstring_names_every_module():
    """bce_helpers/__init__.py's map of the package is complete: a module added is named."""
    import bce_helpers

    modules = {p.stem for p in Path(bce_helpers.__file__).parent.glob("*.py")} - {"__init__"}
    named = set(re.findall(r"``(\w+)``", bce_helpers.__doc__))
    assert modules <= named, f"not named in the docstring: {sorted(modules - named)}"
