"""Executing one notebook through papermill into a file written atomically, its run's
noise stripped: in place (refresh, the tests), or in a worker's scratch folder (the
engine's task)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import nbformat

from bce_suite import kernels

# Per-run noise papermill and Jupyter leave in a notebook: times, paths, widget state.
NOISY_METADATA = ("papermill", "execution", "widgets")


def strip_run_metadata(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove timings, paths and widget state, and join printed text that the kernel
    happened to flush in pieces, so committed diffs stay readable."""
    for key in NOISY_METADATA:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in NOISY_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = join_streams(cell.outputs)
    return nb


def join_streams(outputs: list) -> list:
    """Merge consecutive stream outputs of the same stream (stdout or stderr)."""
    joined: list = []
    for out in outputs:
        prev = joined[-1] if joined else None
        if (
            prev is not None
            and out.get("output_type") == "stream"
            and prev.get("output_type") == "stream"
            and prev.get("name") == out.get("name")
        ):
            prev["text"] = "".join(prev["text"]) + "".join(out["text"])
        else:
            joined.append(out)
    return joined


def execute(
    notebook: Path,
    output: Path,
    parameters: dict[str, Any] | None = None,
    cwd: Path | None = None,
    token: str = "",
    threads: int | None = None,
    kernel_log: Path | None = None,
) -> None:
    """Execute one notebook into `output` (written atomically), raising on a failed cell.

    A failed run still writes its executed notebook (the error is in it); an interrupted
    one (Ctrl-C) writes nothing. Its kernel registers under `token` (see kernels)."""
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
                kernel_manager_class=kernels.manager_class(
                    token, threads, str(kernel_log) if kernel_log else None
                ),
            )
        except Exception:  # a failed cell: keep the executed notebook, then raise
            _keep(tmp, output)
            raise
        _keep(tmp, output)
    finally:
        kernels.forget(token)
        Path(tmp).unlink(missing_ok=True)


def _keep(tmp: str, output: Path) -> None:
    if Path(tmp).stat().st_size:
        nbformat.write(strip_run_metadata(nbformat.read(tmp, as_version=4)), tmp)
        os.replace(tmp, output)


def error_line(exc: BaseException) -> str:
    """One line saying why a run failed (the notebook's own exception, not a traceback)."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}".splitlines()[0]
    return (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0]
