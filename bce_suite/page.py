"""index.html: a page to send, in one self-contained folder: each run's parameters,
status, headline numbers and figure thumbnails linking to its rendered notebook; for a
sweep, its table and figure too."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import nbformat

from bce_helpers.results import write_bytes_atomic, write_text_atomic
from bce_suite.runs import RunResult, format_number

FIGURES = "figures"  # beside index.html: the thumbnails' files
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; text-align: left; }
td.ok, td.skipped { color: #170; } td.failed { color: #b00; font-weight: bold; }
.note { color: #a60; } .params { font-family: monospace; font-size: 90%; }
img.thumb { height: 120px; margin: 2px; border: 1px solid #ddd; }
"""


def extract_figures(executed: Path, out_dir: Path, run: str) -> list[str]:
    """Save the PNG figures of an executed notebook under figures/; their relative paths."""
    nb = nbformat.read(executed, as_version=4)
    paths = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                rel = f"{FIGURES}/{run}-{len(paths) + 1}.png"
                data = "".join(png) if isinstance(png, list) else png
                write_bytes_atomic(out_dir / rel, base64.b64decode(data))
                paths.append(rel)
    return paths


def _cell(text: str, cls: str = "") -> str:
    return f"<td class='{cls}'>{text}</td>" if cls else f"<td>{text}</td>"


def run_row(out_dir: Path, r: RunResult, swept: list[str] | None) -> str:
    """One table row: name (linking to its page), status, seconds, parameters, numbers,
    figures."""
    page = out_dir / f"{r.run}.html"
    name = html.escape(r.run or r.notebook)
    link = f"<a href='{html.escape(page.name)}'>{name}</a>" if page.exists() else name
    status = html.escape(r.status)
    if r.retried:
        lost = html.escape(", ".join(r.lost_workers))
        status += f"<br><span class='note'>retried: worker {lost} died before returning it</span>"
    shown = {k: r.params.get(k) for k in swept} if swept else r.params
    params = ", ".join(f"{k}={v!r}" for k, v in shown.items()) or "defaults"
    if r.status == "failed":
        numbers = html.escape(r.error)
    else:
        numbers = "<br>".join(
            f"{html.escape(k)} = {html.escape(format_number(v))}" for k, v in r.numbers.items()
        )
    executed = out_dir / f"{r.run}.ipynb"
    figures = extract_figures(executed, out_dir, r.run) if executed.exists() else []
    thumbs = "".join(
        f"<a href='{html.escape(page.name)}'><img class='thumb' src='{f}' "
        f"alt='figure {k} of {name}'></a>"
        for k, f in enumerate(figures, 1)
    )
    return (
        "<tr>"
        + _cell(link)
        + _cell(status, r.status)
        + _cell(f"{r.seconds:.1f}")
        + _cell(html.escape(params), "params")
        + _cell(numbers)
        + _cell(thumbs)
        + "</tr>"
    )


def write_index(out_dir: Path, results: list[RunResult], swept: list[str] | None = None) -> None:
    """index.html for a run (swept=None) or a sweep over the named parameters."""
    notebooks = sorted({r.notebook for r in results})
    title = (
        f"Sweep of {notebooks[0]} over {', '.join(swept)}"
        if swept and notebooks
        else "BCE notebook runs"
    )
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "skipped", "failed")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    retried = sum(r.retried for r in results)
    if retried:
        summary += f"; {retried} retried after a worker died"
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p>{len(results)} runs: {html.escape(summary)}.</p>",
    ]
    if swept and (out_dir / "sweep.png").exists():
        parts.append(
            "<h2>The sweep</h2><p><img src='sweep.png' alt='headline numbers against "
            "the swept parameters'></p><p>As a table: <a href='sweep.csv'>sweep.csv</a>, "
            "<a href='sweep.json'>sweep.json</a>.</p>"
        )
    parts.append(
        "<h2>Runs</h2><table><tr><th>run</th><th>status</th><th>seconds</th>"
        "<th>parameters</th><th>headline numbers</th><th>figures</th></tr>"
    )
    parts += [run_row(out_dir, r, swept) for r in results]
    parts.append("</table></body></html>\n")
    write_text_atomic(out_dir / "index.html", "".join(parts))
