"""The committed outputs of a notebook's checked cells against a fresh execution, compared
as nbval compares them (`pytest --nbval-lax`, which tools/gpu_check.sh still runs): only
cells tagged `nbval-check-output`; streams of one name joined, carriage returns and
backspaces applied; every output field and MIME type but those nbval skips (images, widget
ids, metadata, execution counts), each in order; a difference is shown as a diff."""

from __future__ import annotations

import copy
import difflib
from collections import defaultdict

import nbformat
from nbval.plugin import coalesce_streams, transform_streams_for_comparison

from tests.checkout import find_notebook

CHECKED = "nbval-check-output"
# nbval's own list (IPyNbFile.skip_compare, without --nbdime): what differs run to run.
SKIPPED = (
    "metadata",
    "traceback",
    "prompt_number",
    "output_type",
    "name",
    "execution_count",
    "application/vnd.jupyter.widget-view+json",
    "image/png",
    "image/jpeg",
)


def comparable(outputs: list) -> dict[str, list]:
    """A cell's outputs as nbval compares them: each field or MIME type, its values in order."""
    joined = coalesce_streams([nbformat.from_dict(copy.deepcopy(o)) for o in outputs])
    fields: dict[str, list] = defaultdict(list)
    for output in transform_streams_for_comparison(joined):
        for key, value in output.items():
            if key in SKIPPED:
                continue
            if key == "data":
                for mime, shown in value.items():
                    if mime not in SKIPPED:
                        fields[mime].append(shown)
            else:
                fields[key].append(value)
    return dict(fields)


def cell_differences(committed: list, executed: list) -> list[str]:
    """What differs between a cell's committed and executed outputs, as readable diffs."""
    want, got = comparable(committed), comparable(executed)
    found = []
    if set(want) != set(got):
        found.append(f"output fields: committed {sorted(want)}, executed {sorted(got)}")
    for key in sorted(set(want) & set(got)):
        if want[key] != got[key]:
            diff = difflib.unified_diff(
                "\n".join(map(str, want[key])).splitlines(),
                "\n".join(map(str, got[key])).splitlines(),
                "committed",
                "executed",
                lineterm="",
            )
            found.append(f"{key}:\n" + "\n".join(diff))
    return found


def notebook_differences(
    committed: nbformat.NotebookNode, executed: nbformat.NotebookNode
) -> list[str]:
    """Every checked cell of `committed` whose outputs the execution did not reproduce (the
    cells are matched by id, their sources must agree), and any cell nbval refuses: one
    with outputs but no execution count."""
    ran = {c.get("id"): c for c in executed.cells}
    found = []
    for index, cell in enumerate(committed.cells):
        if cell.cell_type != "code":
            continue
        where = f"cell {index} ({cell.source.splitlines()[0] if cell.source else ''!r})"
        if cell.execution_count is None and cell.outputs:
            found.append(f"{where}: committed with outputs but never run")
        if CHECKED not in cell.metadata.get("tags", []):
            continue
        twin = ran.get(cell.get("id"))
        if twin is None or twin.source != cell.source:
            found.append(f"{where}: not in the executed notebook as committed")
            continue
        found += [f"{where}: {d}" for d in cell_differences(cell.outputs, twin.outputs)]
    return found


def assert_reproduced(run) -> None:
    """Fail with every difference if an execution (the store's `Execution`) does not
    reproduce the checked outputs of the notebook as committed."""
    committed = nbformat.read(find_notebook(run.name), as_version=4)
    assert any(CHECKED in c.metadata.get("tags", []) for c in committed.cells), "none checked"
    assert not run.params, f"the committed outputs are those of the defaults, not {run.params}"
    found = notebook_differences(committed, run.notebook)
    assert not found, "the execution differs from the committed outputs:\n" + "\n\n".join(found)
