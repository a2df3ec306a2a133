"""The tests mirror the packages: each module with code has its test file at the mirrored
path (bce_helpers/fast/fused.py -> tests/bce_helpers/fast/test_fused.py), and every test
file there names a module that exists."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.checkout import REPO_ROOT

PACKAGES = ("bce_helpers", "bce_suite")


def has_code(module: Path) -> bool:
    """Whether a module defines a function or a class (a package's docstring alone does not)."""
    tree = ast.parse(module.read_text())
    return any(isinstance(node, ast.FunctionDef | ast.ClassDef) for node in ast.walk(tree))


def mirrored_test_file(module: Path, root: Path) -> Path:
    """Where a module's tests live: __init__.py's in test_init.py."""
    relative = module.relative_to(root)
    stem = "init" if module.stem == "__init__" else module.stem
    return root / "tests" / relative.parent / f"test_{stem}.py"


def untested_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """The packages' modules with code and no test file at the mirrored path."""
    return [
        str(module.relative_to(root))
        for package in packages
        for module in sorted((root / package).rglob("*.py"))
        if module.name != "__main__.py"
        and has_code(module)
        and not mirrored_test_file(module, root).is_file()
    ]


def orphan_test_files(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Test files under tests/<package>/ that name no module of the package."""
    orphans = []
    for package in packages:
        for test in sorted((root / "tests" / package).rglob("test_*.py")):
            folder = root / test.parent.relative_to(root / "tests")
            stem = test.stem.removeprefix("test_")
            source = folder / ("__init__.py" if stem == "init" else f"{stem}.py")
            if not source.is_file():
                orphans.append(str(test.relative_to(root)))
    return orphans


def test_every_module_has_its_test_file():
    assert untested_modules(REPO_ROOT) == []


def test_every_test_file_names_its_module():
    assert orphan_test_files(REPO_ROOT) == []


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A package with a module tested in its mirrored place, one not, and a stray test."""
    for path, text in {
        "pkg/__init__.py": '"""Only a docstring."""\n',
        "pkg/sub/__init__.py": "def grade():\n    pass\n",
        "pkg/sub/tested.py": "def f():\n    pass\n",
        "pkg/untested.py": "class C:\n    pass\n",
        "tests/pkg/sub/test_tested.py": "",
        "tests/pkg/sub/test_init.py": "",
        "tests/pkg/test_gone.py": "",
    }.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path


def test_the_checks_find_an_untested_module_and_a_stray_test(tree: Path):
    assert untested_modules(tree, ("pkg",)) == ["pkg/untested.py"]
    assert orphan_test_files(tree, ("pkg",)) == ["tests/pkg/test_gone.py"]
