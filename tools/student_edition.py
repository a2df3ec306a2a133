"""Write the student edition: every notebook with its exercise solutions taken out.

A solution is the code between nbgrader's `### BEGIN SOLUTION` and `### END SOLUTION`
markers; it becomes `# YOUR CODE HERE` at the same indentation. What is left in the cell
(a function's signature and docstring, `answer = None`) still runs, so the exercise's check
says "not attempted yet" and every later cell runs as before. Solution cells are shown
expanded, and their outputs, and those of the check cells, are cleared; every other cell
keeps its committed outputs.

    .venv/bin/python tools/student_edition.py [--out build/student]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = "# YOUR CODE HERE"
REGION = re.compile(
    rf"^(?P<indent>[ \t]*){re.escape(BEGIN)}[ \t]*\n.*?^[ \t]*{re.escape(END)}[ \t]*$",
    re.DOTALL | re.MULTILINE,
)
CHECK_CALL = re.compile(r"^check\(", re.MULTILINE)


def strip_solutions(source: str) -> str:
    """`source` with every solution region replaced by the stub, at the region's indent."""
    stripped = REGION.sub(lambda m: m["indent"] + STUB, source)
    if BEGIN in stripped or END in stripped:
        raise ValueError(f"unbalanced solution markers in cell:\n{source}")
    return stripped


def clear_outputs(cell: nbformat.NotebookNode) -> None:
    """Remove a code cell's outputs and execution count."""
    cell.outputs = []
    cell.execution_count = None


def student_notebook(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """The notebook with its solutions taken out, and how many solution cells it had."""
    solutions = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if BEGIN in cell.source or END in cell.source:
            solutions += 1
            cell.source = strip_solutions(cell.source)
            cell.metadata.get("jupyter", {}).pop("source_hidden", None)
            if cell.metadata.get("jupyter") == {}:
                del cell.metadata["jupyter"]
            clear_outputs(cell)
        elif CHECK_CALL.search(cell.source):
            clear_outputs(cell)
    return nb, solutions


def write_edition(out: Path, notebook_dir: Path = ROOT / "notebooks") -> dict[str, int]:
    """Write the student edition of every notebook into `out`; return solutions per file."""
    if out.resolve() == notebook_dir.resolve():
        raise ValueError(f"out={str(out)!r} is the notebooks' own folder: choose another")
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for path in sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb")):
        nb, counts[path.name] = student_notebook(nbformat.read(path, as_version=4))
        tmp = out / f".{path.name}.tmp"
        nbformat.write(nb, tmp)
        tmp.replace(out / path.name)
    return counts


def main(argv: list[str] | None = None) -> int:
    """The command line: write the edition, print one line per notebook."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "build" / "student", help="where to write"
    )
    args = parser.parse_args(argv)
    try:
        counts = write_edition(args.out)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for name, n in counts.items():
        print(f"{args.out / name}: {n} solution{'s' * (n != 1)} taken out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
