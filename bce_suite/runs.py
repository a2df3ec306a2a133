"""The records of a run, shared by the engine, resume and the reports: what to do (Job),
what a task returns (Outcome), what became of it (RunResult), and how they are shown."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Job:
    """One notebook execution to do: which notebook, with what, named how."""

    notebook: Path
    params: dict[str, Any]  # the values given (typed); the notebook's defaults fill the rest
    run: str  # the file stem of its outputs
    effective: dict[str, Any] = field(default_factory=dict)  # every value it runs with
    writes_results: bool = True  # the notebook declares results_path
    priority: int = 0  # among runs waiting for a worker, the highest starts first


@dataclass
class Outcome:
    """What one task returns to the client: the executed notebook and results as text."""

    status: str  # "ok" or "failed"
    seconds: float
    notebook: str | None  # the executed notebook (JSON text), None if it never ran
    results: str | None  # the results JSON the notebook wrote, None if it wrote none
    error: str = ""
    worker: str = ""
    page: str | None = None  # the executed notebook as an HTML page, rendered on the worker


@dataclass
class RunResult:
    """The outcome of one notebook execution."""

    notebook: str
    status: str  # "ok", "failed" or "skipped" (complete from an earlier invocation)
    seconds: float
    numbers: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    run: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    lost_workers: list[str] = field(default_factory=list)  # died before returning it: run again

    @property
    def retried(self) -> bool:
        """Executed again: a worker died running it or holding its result."""
        return bool(self.lost_workers)


def headline_numbers(results: dict[str, Any]) -> dict[str, Any]:
    """The scalar numbers of a results JSON (not its parameters or environment)."""
    skip = {"notebook", "params", "torch_version", "device"}
    return {
        k: v
        for k, v in results.items()
        if k not in skip and isinstance(v, int | float) and not isinstance(v, bool)
    }


def format_number(value: Any) -> str:
    """A headline number as the reports show it (4 significant digits for floats)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
