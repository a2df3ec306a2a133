"""The student edition: written by its command, solutions gone, and it runs to the end,
shown without a run of its own: it is the committed notebook but for its solution cells,
and the committed notebook's run at its defaults is checked to the end by the notebook's
own tests (tests/notebooks/). Each stubbed cell runs here alone, its answer is graded
"not attempted", and no later cell reads a name only the solution bound."""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys

import nbformat
import pytest

from bce_helpers.exercises import grade
from tests.checkout import REPO_ROOT, all_notebooks

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
WITH_EXERCISES = [p for p in all_notebooks() if BEGIN in p.read_text()]
TOOL = REPO_ROOT / "tools" / "student_edition.py"
REGION = re.compile(rf"{BEGIN}\n(.*?)\n[ \t]*{END}", re.DOTALL)


def solution_lines(nb: nbformat.NotebookNode) -> list[str]:
    """The lines between the markers of every solution region, stripped, comments left out,
    less those the lesson itself shows outside any solution."""
    sources = [c.source for c in nb.cells]
    outside = "\n".join(REGION.sub("", source) for source in sources)
    lines = []
    for region in REGION.findall("\n".join(sources)):
        lines += [s.strip() for s in region.splitlines() if s.strip()[:1] not in ("", "#")]
    return [line for line in lines if line not in outside]


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    """The student edition, written by the README's command into a temporary folder."""
    out = tmp_path_factory.mktemp("student")
    command = [sys.executable, str(TOOL), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return out, done.stdout


def test_the_command_writes_every_notebook_and_counts_its_solutions(edition):
    out, printed = edition
    for path in all_notebooks():
        n = sum(BEGIN in c.source for c in nbformat.read(path, as_version=4).cells)
        assert (out / path.name).exists()
        assert f"{path.name}: {n} solution{'s' * (n != 1)} taken out" in printed
    assert len(WITH_EXERCISES) >= 5


def test_the_command_refuses_to_overwrite_the_notebooks(capsys):
    spec = importlib.util.spec_from_file_location("student_edition", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(["--out", str(REPO_ROOT / "notebooks")]) == 2
    assert "is the notebooks' own folder" in capsys.readouterr().err


def bindings(node: ast.AST) -> set[str]:
    """The names a piece of code binds: assignments, loop targets, defs, classes, imports."""
    bound = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            bound.add(sub.id)
        elif isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(sub.name)
        elif isinstance(sub, ast.Import | ast.ImportFrom):
            bound |= {(a.asname or a.name).split(".")[0] for a in sub.names}
    return bound


def python_of(source: str) -> ast.Module:
    """A cell's code as Python: IPython's magics and shell lines left out."""
    return ast.parse("\n".join(line for line in source.splitlines() if line[:1] not in "%!"))


def name_events(node: ast.AST, shadowed: frozenset[str] = frozenset()) -> list[tuple]:
    """(line, column, is a read, name) of every name in the code, but those a function's
    own parameters or local names shadow (its body reads them, not the notebook's)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        arguments = node.args
        params = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        params += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
        body = node.body if isinstance(node.body, list) else [node.body]
        local = {a.arg for a in params} | set().union(*(bindings(b) for b in body))
        shadowed = shadowed | local
    events = []
    if isinstance(node, ast.Name) and node.id not in shadowed:
        events.append((node.lineno, node.col_offset, isinstance(node.ctx, ast.Load), node.id))
    for child in ast.iter_child_nodes(node):
        events += name_events(child, shadowed)
    return events


def first_use_before_binding(cells: list[str], names: set[str]) -> str | None:
    """The first of `names` that a cell reads before any of these cells binds it again, in
    the order the cells run (within a cell, by position); None if every read comes after."""
    unbound = set(names)
    for source in cells:
        tree = python_of(source)
        events = [e for e in name_events(tree) if e[3] in unbound]
        for _, _, load, name in sorted(events, key=lambda e: (e[0], e[1], not e[2])):
            if name in unbound and load:
                return name
            unbound.discard(name)
        unbound -= bindings(tree)
    return None


@pytest.mark.parametrize(
    ("cells", "names", "first"),
    [
        (["y = 1", "print(z)"], {"z"}, "z"),  # read, never bound again
        (["z = 2\nprint(z)"], {"z"}, None),  # bound, then read
        (["print(z)\nz = 2"], {"z"}, "z"),  # read before it is bound in the same cell
        (["for z in range(2):\n    pass", "print(z)"], {"z"}, None),
        (["%matplotlib inline\nprint(w)"], {"z"}, None),
        (["def f(z):\n    return z", "f(1)"], {"z"}, None),  # a parameter, not the name
        (["def f():\n    return z"], {"z"}, "z"),  # the notebook's name, read when called
    ],
)
def test_a_read_before_binding_is_found(cells, names, first):
    assert first_use_before_binding(cells, names) == first


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.stem)
def test_the_student_edition_runs_to_the_end_not_attempted(edition, path):
    """Without a second run: the student edition is the committed notebook (whose run at
    its defaults the notebook's own tests check to the end) but for its solution cells;
    each of those runs here on its own, its answer is graded "not attempted", and no later
    cell reads a name that only the solution bound."""
    out, _ = edition
    committed = nbformat.read(path, as_version=4)
    student = nbformat.read(out / path.name, as_version=4)
    student_text = "\n".join(c.source for c in student.cells)
    answers = solution_lines(committed)
    assert answers, "the committed notebook has solutions"
    assert BEGIN not in student_text and END not in student_text
    assert [line for line in answers if line in student_text] == [], "solution text left"
    assert len(student.cells) == len(committed.cells)
    solved = [i for i, c in enumerate(committed.cells) if BEGIN in c.source]
    assert len(solved) >= 2
    for i, (ours, theirs) in enumerate(zip(committed.cells, student.cells, strict=True)):
        if i not in solved:
            assert theirs.source == ours.source, f"cell {i} differs from the committed one"
    for i in solved:
        stub, full = student.cells[i].source, committed.cells[i].source
        assert "# YOUR CODE HERE" in stub and student.cells[i].outputs == []
        assert "source_hidden" not in student.cells[i].metadata.get("jupyter", {})
        call = re.search(r'^check\("(\d\d\.\d)", (\w+)\)$', student.cells[i + 1].source, re.M)
        assert call, "the next cell checks the answer"
        namespace: dict = {}
        exec(compile(python_of(stub), f"{path.stem} cell {i}", "exec"), namespace)
        assert grade(call[1], namespace[call[2]]).status == "not attempted"
        lost = bindings(python_of(full)) - bindings(python_of(stub))
        later = [c.source for c in committed.cells[i + 1 :] if c.cell_type == "code"]
        assert first_use_before_binding(later, lost) is None, f"a later cell needs {lost}"
