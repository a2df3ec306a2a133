"""committed_outputs: the checked cells compared as nbval compares them (nbval's own
comparison is the reference), each difference shown, and nothing but the checked cells."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import nbformat
import pytest
from nbval.plugin import IPyNbCell, coalesce_streams

from tests.checkout import find_notebook
from tests.notebooks.committed_outputs import (
    CHECKED,
    SKIPPED,
    cell_differences,
    notebook_differences,
)


def stream(text: str, name: str = "stdout") -> dict:
    return nbformat.v4.new_output("stream", name=name, text=text)


def shown(data: dict, count: int | None = None) -> dict:
    if count is None:
        return nbformat.v4.new_output("display_data", data=data)
    return nbformat.v4.new_output("execute_result", data=data, execution_count=count)


def nbval_agrees(committed: list, executed: list) -> bool:
    """nbval's own verdict (IPyNbCell.compare_outputs, as `--nbval-lax` runs it)."""
    cell = SimpleNamespace(
        colors=SimpleNamespace(FAIL="", OKBLUE="", ENDC="", OKGREEN=""),
        sanitize=lambda s: s,
        format_output_compare=lambda *args: None,
    )
    cell.parent = SimpleNamespace(skip_compare=SKIPPED)
    nodes = [nbformat.from_dict(copy.deepcopy(o)) for o in (*committed, *executed)]
    ref, test = nodes[: len(committed)], nodes[len(committed) :]
    return IPyNbCell.compare_outputs(cell, coalesce_streams(test), coalesce_streams(ref))


CASES = [
    ("the same text", [stream("a\nb\n")], [stream("a\nb\n")], False),
    ("other text", [stream("loss 0.4149\n")], [stream("loss 0.4150\n")], True),
    ("a stream in pieces", [stream("ab\n")], [stream("a"), stream("b\n")], False),
    ("pieces around a display", [stream("ab\n"), shown({"text/plain": "x"})],
     [stream("a"), shown({"text/plain": "x"}), stream("b\n")], False),
    ("a carriage return", [stream("done\n")], [stream("50%\rdone\n")], False),
    ("stderr for stdout", [stream("w\n")], [stream("w\n", "stderr")], True),
    ("another figure", [shown({"image/png": "AAAA", "text/plain": "<Figure>"})],
     [shown({"image/png": "BBBB", "text/plain": "<Figure>"})], False),
    ("another figure's text", [shown({"image/png": "AAAA", "text/plain": "<Figure 1>"})],
     [shown({"image/png": "AAAA", "text/plain": "<Figure 2>"})], True),
    ("another widget id",
     [shown({"application/vnd.jupyter.widget-view+json": {"model_id": "1"}, "text/plain": "w"})],
     [shown({"application/vnd.jupyter.widget-view+json": {"model_id": "2"}, "text/plain": "w"})],
     False),
    ("another execution count", [shown({"text/plain": "3"}, 4)], [shown({"text/plain": "3"}, 9)],
     False),
    ("an output missing", [stream("a\n"), shown({"text/html": "<b>"})], [stream("a\n")], True),
    ("an output more", [stream("a\n")], [stream("a\n"), stream("e\n", "stderr")], True),
    ("the same two, swapped", [shown({"text/plain": "1"}), shown({"text/plain": "2"})],
     [shown({"text/plain": "2"}), shown({"text/plain": "1"})], True),
]  # fmt: skip


@pytest.mark.parametrize(("committed", "executed", "differs"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_a_cell_differs_where_nbval_says_it_does(committed, executed, differs):
    assert bool(cell_differences(committed, executed)) is differs
    assert nbval_agrees(committed, executed) is not differs


def test_a_difference_is_shown_as_a_diff_of_the_lines():
    (found,) = cell_differences([stream("epoch 1\nloss 0.41\n")], [stream("epoch 1\nloss 0.42\n")])
    assert found.startswith("stdout:\n") and "-loss 0.41\n+loss 0.42" in found
    assert " epoch 1" in found  # the unchanged line, as context


def checked_cell(nb: nbformat.NotebookNode) -> int:
    """The index of the first checked cell that prints something."""
    return next(
        i
        for i, c in enumerate(nb.cells)
        if CHECKED in c.metadata.get("tags", []) and any("text" in o for o in c.outputs)
    )


def test_a_committed_notebook_reproduces_itself_and_only_checked_cells_count():
    committed = nbformat.read(find_notebook("02"), as_version=4)
    executed = copy.deepcopy(committed)
    assert notebook_differences(committed, executed) == []
    ignored = next(
        c
        for c in executed.cells
        if c.cell_type == "code" and c.outputs and CHECKED not in c.metadata.get("tags", [])
    )
    ignored.outputs = [stream("anything\n")]
    assert notebook_differences(committed, executed) == []
    index = checked_cell(executed)
    executed.cells[index].outputs = [stream("something else\n")]
    (found,) = notebook_differences(committed, executed)
    assert found.startswith(f"cell {index} (") and "+something else" in found


def test_a_checked_cell_missing_or_changed_in_the_run_is_reported():
    committed = nbformat.read(find_notebook("02"), as_version=4)
    index = checked_cell(committed)
    executed = copy.deepcopy(committed)
    executed.cells[index].source += "\nprint('more')"
    assert notebook_differences(committed, executed) == [
        f"cell {index} ({committed.cells[index].source.splitlines()[0]!r}): "
        "not in the executed notebook as committed"
    ]
    del executed.cells[index]
    assert len(notebook_differences(committed, executed)) == 1


def test_a_committed_cell_with_outputs_but_no_execution_count_is_refused():
    committed = nbformat.read(find_notebook("02"), as_version=4)
    index = checked_cell(committed)
    executed = copy.deepcopy(committed)
    committed.cells[index].execution_count = None
    (found,) = notebook_differences(committed, executed)
    assert found.endswith("committed with outputs but never run")
