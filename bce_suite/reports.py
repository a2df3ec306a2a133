"""Reports of a run or a sweep: the table printed, summary.json/.md, sweep.csv/.json and
its figure, and index.html with a page per executed notebook."""

from __future__ import annotations

import csv
import io
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bce_helpers.results import write_json_atomic, write_text_atomic
from bce_suite.execute import error_line
from bce_suite.page import write_index
from bce_suite.runs import RunResult, format_number


def describe(result: RunResult) -> str:
    """The numbers of a good run, or the error line of a failed one; retries noted."""
    text = (
        result.error
        if result.status == "failed"
        else ", ".join(f"{k}={format_number(v)}" for k, v in result.numbers.items())
    )
    if result.retried:
        lost = ", ".join(result.lost_workers)
        text += f" [retried: worker {lost} died before returning it]"
    return text


def format_table(results: list[RunResult]) -> str:
    """A plain-text table: notebook, status, seconds, headline numbers."""
    rows = [("notebook", "status", "seconds", "headline numbers")]
    rows += [(r.run or r.notebook, r.status, f"{r.seconds:.1f}", describe(r)) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def to_html(executed: Path, target: Path) -> None:
    """Render an executed notebook as a standalone HTML page, written atomically."""
    from bce_suite.offline_html import html_page  # nbconvert: only where a page is missing

    write_text_atomic(target, html_page(executed))


def summary_rows(results: list[RunResult]) -> list[dict[str, Any]]:
    """summary.json's records: one per run."""
    return [asdict(r) | {"retried": r.retried} for r in results]


def write_run_report(out_dir: Path, results: list[RunResult]) -> None:
    """summary.json, summary.md, an HTML page per executed notebook and index.html."""
    write_json_atomic(out_dir / "summary.json", summary_rows(results))
    md = ["| notebook | status | seconds | headline numbers |", "|---|---|---|---|"]
    md += [f"| {r.run} | {r.status} | {r.seconds:.1f} | {describe(r)} |" for r in results]
    write_text_atomic(out_dir / "summary.md", "\n".join(md) + "\n")
    render_pages(out_dir, results)
    write_index(out_dir, results)


def render_pages(out_dir: Path, results: list[RunResult]) -> None:
    """An HTML page beside each executed notebook that has none newer (a worker rendered
    most already); one that cannot render warns."""
    for r in results:
        executed, page = out_dir / f"{r.run}.ipynb", out_dir / f"{r.run}.html"
        if not executed.exists():
            continue
        if not (page.exists() and page.stat().st_mtime_ns >= executed.stat().st_mtime_ns):
            try:
                to_html(executed, out_dir / f"{r.run}.html")
            except Exception as exc:  # a page that cannot render must not fail good runs
                print(f"warning: no HTML page for {r.run}: {error_line(exc)}", file=sys.stderr)


def write_sweep_report(out_dir: Path, swept: list[str], results: list[RunResult]) -> None:
    """sweep.csv and sweep.json, sweep.png (each headline number against each parameter that
    varies), and the pages of a run report with the sweep's table and figure on index.html."""
    metrics = sorted({k for r in results for k in r.numbers})
    rows = [
        {"run": r.run, "status": r.status, "seconds": round(r.seconds, 2)}
        | {p: r.params.get(p) for p in swept}
        | {m: r.numbers.get(m) for m in metrics}
        | {"error": r.error, "retried": r.retried}
        for r in results
    ]
    write_json_atomic(out_dir / "sweep.json", rows)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out_dir / "sweep.csv", table.getvalue())
    write_json_atomic(out_dir / "summary.json", summary_rows(results))
    good = [r for r in results if r.status != "failed"]
    if metrics and good:
        plot_sweep(out_dir / "sweep.png", swept, metrics, good)
    render_pages(out_dir, results)
    write_index(out_dir, results, swept=swept)


def plot_sweep(path: Path, swept: list[str], metrics: list[str], results: list[RunResult]) -> None:
    """One panel per (number, parameter that takes several values); one line per setting of
    the other such parameters. A parameter given one value would be a single x position."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    varied = [p for p in swept if len({repr(r.params.get(p)) for r in results}) > 1] or swept
    fig, axes = plt.subplots(
        len(metrics), len(varied), figsize=(4.5 * len(varied), 3 * len(metrics)), squeeze=False
    )
    for i, metric in enumerate(metrics):
        for j, param in enumerate(varied):
            ax = axes[i][j]
            others = [p for p in varied if p != param]
            groups: dict[tuple, list[RunResult]] = {}
            for r in results:
                groups.setdefault(tuple(r.params.get(p) for p in others), []).append(r)
            for key, group in groups.items():
                group = sorted(group, key=lambda r: str(r.params[param]))
                if all(isinstance(r.params[param], int | float) for r in group):
                    group = sorted(group, key=lambda r: r.params[param])
                label = ", ".join(f"{p}={v}" for p, v in zip(others, key, strict=True)) or None
                xs = [r.params[param] for r in group]
                ax.plot(xs, [r.numbers.get(metric) for r in group], "o-", label=label)
            ax.set_xlabel(param)
            ax.set_ylabel(metric)
            ax.grid(True, alpha=0.3)
            if others:
                ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fig.savefig(tmp, dpi=80, format="png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        plt.close(fig)


def print_report(results: list[RunResult], out_dir: Path) -> int:
    """Print the table and the failures; 0 if every run is good, else 1."""
    print()
    print(format_table(results))
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        print(f"FAILED {r.run}: {r.error}", file=sys.stderr)
    print(f"\noutputs in {out_dir}")
    return 1 if failed else 0
