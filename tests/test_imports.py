"""The packages' imports, read from the source with ast (at module level and inside
functions alike): no cycle, nothing from the library into the tooling, and the lessons
apart from the fast path."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from tests.checkout import REPO_ROOT

PACKAGES = ("bce_helpers", "bce_suite")
FAST = "bce_helpers.fast"
# The one lesson import of the fast path: train.criterion_for calls the fused loss.
LESSONS_INTO_FAST = {("bce_helpers.train", "criterion_for")}


@dataclass(frozen=True)
class Import:
    """One import of a package module by another: where it stands and what it names."""

    importer: str
    imported: str
    function: str | None  # the enclosing function, None at module level
    line: int


def module_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Every module of the packages under root: dotted name -> file."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module of a `from ... import`, relative ones included."""
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _known(name: str, modules: set[str]) -> str | None:
    """The longest prefix of a dotted name that is one of the modules, if any."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def imports_of(name: str, path: Path, modules: set[str]) -> list[Import]:
    """The imports of the packages' modules in one file, with the function each is in.
    `from x import y` where x.y is a module imports x.y; otherwise it imports x."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, function: str | None) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name if function is None else function
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(name, is_package, node)
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module
                for alias in node.names
            ]
        for target in targets:
            known = _known(target, modules)
            if known is not None and known != name:
                found.append(Import(name, known, function, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, None)
    return found


def all_imports(root: Path = REPO_ROOT, packages: tuple[str, ...] = PACKAGES) -> list[Import]:
    """Every import between the packages' modules under root."""
    files = module_files(root, packages)
    return [imp for name, path in files.items() for imp in imports_of(name, path, set(files))]


def graph_of(imports: list[Import]) -> dict[str, set[str]]:
    """Module -> the modules it imports."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.importer, set()).add(imp.imported)
        graph.setdefault(imp.imported, set())
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that returns to its start, or None."""
    state: dict[str, str] = {}  # "open" while on the path, "done" once fully explored
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := walk(start)):
            return cycle
    return None


def where(imp: Import) -> str:
    inside = f" in {imp.function}()" if imp.function else ""
    return f"{imp.importer}:{imp.line}{inside} imports {imp.imported}"


def test_the_imports_form_no_cycle():
    imports = all_imports()
    assert {i.importer for i in imports} >= {"bce_suite.cli", "bce_helpers.train"}, "read them"
    cycle = find_cycle(graph_of(imports))
    assert cycle is None, "an import cycle: " + " -> ".join(cycle or [])


def test_the_library_imports_nothing_from_the_tooling():
    wrong = [
        where(i)
        for i in all_imports()
        if i.importer.startswith("bce_helpers") and i.imported.startswith("bce_suite")
    ]
    assert wrong == []


def test_the_lessons_import_the_fast_path_only_in_train_criterion_for():
    into_fast = {
        (i.importer, i.function): i
        for i in all_imports()
        if not (i.importer == FAST or i.importer.startswith(FAST + "."))
        and (i.imported == FAST or i.imported.startswith(FAST + "."))
    }
    unexpected = [where(i) for key, i in into_fast.items() if key not in LESSONS_INTO_FAST]
    assert unexpected == []
    assert set(into_fast) == LESSONS_INTO_FAST, "train.criterion_for's import is read"


def test_find_cycle_finds_one_and_only_where_there_is_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond
    assert find_cycle({"x": {"a"}, "a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_imports_inside_functions_and_of_submodules_are_read(tmp_path):
    """A small package whose cycle only shows counting a function's import and a
    `from package import submodule`."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import c\n")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from .sub.c import g\n    return g\n")
    (pkg / "sub" / "c.py").write_text("import os\n\n\ndef g():\n    import pkg.a\n")
    imports = all_imports(tmp_path, ("pkg",))
    assert {(i.importer, i.imported, i.function) for i in imports} == {
        ("pkg.a", "pkg.b", None),
        ("pkg.b", "pkg.sub.c", "f"),
        ("pkg.sub", "pkg.sub.c", None),
        ("pkg.sub.c", "pkg.a", "g"),
    }
    assert find_cycle(graph_of(imports)) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]
