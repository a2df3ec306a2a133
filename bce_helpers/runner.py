"""Run the suite's notebooks through papermill: `python -m bce_helpers run|refresh|list`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from bce_helpers.results import read_results

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
# Per-run noise papermill and Jupyter leave in a notebook: times, absolute paths.
NOISY_METADATA = ("papermill", "execution", "widgets")


def all_notebooks(notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The suite's numbered notebooks, in order."""
    return sorted(p for p in notebook_dir.glob("[0-9][0-9]_*.ipynb"))


def find_notebook(name: str, notebook_dir: Path = NOTEBOOK_DIR) -> Path:
    """A notebook by number ('04'), stem ('04_pos_weight') or file name."""
    notebooks = all_notebooks(notebook_dir)
    stem = Path(name).stem
    matches = [p for p in notebooks if p.stem == stem or p.stem.split("_", 1)[0] == stem]
    if len(matches) != 1:
        known = ", ".join(p.stem for p in notebooks)
        raise ValueError(f"notebook {name!r} not found; known notebooks: {known}")
    return matches[0]


def strip_run_metadata(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove timings and paths papermill records, so committed diffs stay readable."""
    for key in NOISY_METADATA:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in NOISY_METADATA:
            cell.metadata.pop(key, None)
    return nb


def execute(
    notebook: Path,
    output: Path,
    parameters: dict[str, Any] | None = None,
    cwd: Path | None = None,
) -> None:
    """Execute one notebook into `output` (written atomically), raising on a failed cell."""
    import papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.stem}.", suffix=".ipynb")
    os.close(fd)
    try:
        try:
            papermill.execute_notebook(
                str(notebook),
                tmp,
                parameters=parameters or {},
                cwd=str(cwd) if cwd else None,
                progress_bar=False,
                kernel_name="python3",
            )
        finally:
            nb = strip_run_metadata(nbformat.read(tmp, as_version=4))
            nbformat.write(nb, tmp)
            os.replace(tmp, output)
    finally:
        Path(tmp).unlink(missing_ok=True)


def error_line(exc: BaseException) -> str:
    """One line saying why a run failed (the notebook's own exception, not a traceback)."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}"
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


@dataclass
class RunResult:
    """The outcome of one notebook execution."""

    notebook: str
    status: str
    seconds: float
    numbers: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def headline_numbers(results: dict[str, Any]) -> dict[str, Any]:
    """The scalar numbers of a results JSON (not its parameters or environment)."""
    skip = {"notebook", "params", "torch_version", "device"}
    return {
        k: v
        for k, v in results.items()
        if k not in skip and isinstance(v, int | float) and not isinstance(v, bool)
    }


def run_one(notebook: Path, out_dir: Path, parameters: dict[str, Any]) -> RunResult:
    """Execute a notebook into out_dir with its results JSON beside it."""
    results_path = out_dir / f"{notebook.stem}.json"
    results_path.unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        execute(
            notebook,
            out_dir / notebook.name,
            {**parameters, "results_path": str(results_path)},
            cwd=out_dir,
        )
    except Exception as exc:  # a failed run is reported, not raised
        return RunResult(
            notebook.stem, "failed", time.perf_counter() - start, error=error_line(exc)
        )
    seconds = time.perf_counter() - start
    return RunResult(notebook.stem, "ok", seconds, headline_numbers(read_results(results_path)))


def format_number(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_table(results: list[RunResult]) -> str:
    """A plain-text table: notebook, status, seconds, headline numbers."""
    rows = [("notebook", "status", "seconds", "headline numbers")]
    for r in results:
        numbers = ", ".join(f"{k}={format_number(v)}" for k, v in r.numbers.items())
        rows.append((r.notebook, r.status, f"{r.seconds:.1f}", numbers or r.error))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def run_notebooks(names: list[str], out_dir: Path, parameters: dict[str, Any]) -> list[RunResult]:
    """Execute the named notebooks (all by default) into out_dir, printing as each ends."""
    notebooks = [find_notebook(n) for n in names] if names else all_notebooks()
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for i, nb in enumerate(notebooks, 1):
        print(f"[{i}/{len(notebooks)}] {nb.stem} ...", end=" ", flush=True)
        result = run_one(nb, out_dir, parameters)
        print(f"{result.status} ({result.seconds:.1f} s)", flush=True)
        results.append(result)
    summary = [r.__dict__ for r in results]
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return results


def refresh_notebooks(names: list[str]) -> None:
    """Re-execute committed notebooks in place so their stored outputs are fresh."""
    notebooks = [find_notebook(n) for n in names] if names else all_notebooks()
    for nb in notebooks:
        start = time.perf_counter()
        print(f"refreshing {nb.name} ...", end=" ", flush=True)
        execute(nb, nb, cwd=nb.parent)
        print(f"{time.perf_counter() - start:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    """The command line: run the suite, or refresh the committed notebooks."""
    parser = argparse.ArgumentParser(prog="python -m bce_helpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="execute notebooks into an output folder")
    run_p.add_argument("notebooks", nargs="*", help="numbers or names (default: all)")
    run_p.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "latest")
    ref_p = sub.add_parser("refresh", help="re-execute the committed notebooks in place")
    ref_p.add_argument("notebooks", nargs="*", help="numbers or names (default: all)")
    args = parser.parse_args(argv)

    try:
        if args.command == "refresh":
            refresh_notebooks(args.notebooks)
            return 0
        results = run_notebooks(args.notebooks, args.out, {})
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(format_table(results))
    print(f"\noutputs in {args.out}")
    return 0 if all(r.status == "ok" for r in results) else 1
