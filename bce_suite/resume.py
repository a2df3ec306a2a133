"""An output folder's runs: written atomically by the client, each executed notebook
recording the parameters it ran with, so a run counts as complete only for those."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat

from bce_helpers.results import read_results, write_text_atomic
from bce_suite.runs import Job, Outcome, RunResult, headline_numbers

RECORD_KEY = "bce_suite"  # notebook metadata: {"notebook", "parameters", "status"}


def record_of(out_dir: Path, run: str) -> dict[str, Any] | None:
    """What an executed notebook in out_dir says it ran with, or None."""
    path = out_dir / f"{run}.ipynb"
    if not path.exists():
        return None
    try:
        return dict(nbformat.read(path, as_version=4).metadata.get(RECORD_KEY) or {}) or None
    except (OSError, ValueError):
        return None


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def completed(out_dir: Path, job: Job) -> RunResult | None:
    """The earlier run of this job with these parameters, if it is complete there."""
    record = record_of(out_dir, job.run)
    results = out_dir / f"{job.run}.json"
    if (
        record is None
        or record.get("status") != "ok"
        or not _same(record.get("parameters", {}), job.effective)
        or (job.writes_results and not results.exists())
    ):
        return None
    numbers = headline_numbers(read_results(results)) if job.writes_results else {}
    return RunResult(job.notebook.stem, "skipped", 0.0, numbers, run=job.run, params=job.params)


def replaced(out_dir: Path, job: Job) -> str | None:
    """A line naming the differences, if out_dir holds this run with other parameters."""
    record = record_of(out_dir, job.run)
    if record is None or _same(record.get("parameters", {}), job.effective):
        return None
    old = record.get("parameters", {})
    diff = [k for k in {**old, **job.effective} if old.get(k) != job.effective.get(k)]
    was = ", ".join(f"{k}={old.get(k)!r}" for k in diff)
    now = ", ".join(f"{k}={job.effective.get(k)!r}" for k in diff)
    return f"{job.run} in {out_dir} ran with {was}: running it again with {now}"


def clean_stale(out_dir: Path) -> None:
    """Remove temporary files a killed process left (never complete outputs)."""
    for stale in [*out_dir.glob(".*.tmp"), *out_dir.glob(".*.ipynb")]:
        stale.unlink(missing_ok=True)


def save(out_dir: Path, job: Job, outcome: Outcome) -> RunResult:
    """Write a task's outputs atomically (results first, the notebook with its record
    last) and return its result."""
    results_path = out_dir / f"{job.run}.json"
    numbers: dict[str, Any] = {}
    if outcome.results is not None:
        write_text_atomic(results_path, outcome.results)
        numbers = headline_numbers(json.loads(outcome.results))
    else:
        results_path.unlink(missing_ok=True)
    if outcome.notebook is not None:
        nb = nbformat.reads(outcome.notebook, as_version=4)
        nb.metadata[RECORD_KEY] = {
            "notebook": job.notebook.stem,
            "parameters": job.effective,
            "status": outcome.status,
        }
        write_text_atomic(out_dir / f"{job.run}.ipynb", nbformat.writes(nb) + "\n")
    if outcome.page is not None:  # after the notebook: a page never predates its notebook
        write_text_atomic(out_dir / f"{job.run}.html", outcome.page)
    return RunResult(
        job.notebook.stem,
        outcome.status,
        outcome.seconds,
        numbers,
        error=outcome.error,
        run=job.run,
        params=job.params,
    )
