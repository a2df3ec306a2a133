"""Run the suite's notebooks through papermill from the command line.

    python -m bce_helpers run [NOTEBOOK ...] [-p NAME VALUE ...] [--out DIR] [--jobs N]
    python -m bce_helpers sweep NOTEBOOK (--grid FILE.yaml | -p NAME V1 V2 ...) [--jobs N]
    python -m bce_helpers list
    python -m bce_helpers refresh [NOTEBOOK ...]

Parameters are checked against each notebook's parameters cell before any kernel starts.
Runs go N at a time; one failing run does not stop the others. Every output is written
atomically, so a run whose notebook and results JSON both exist is complete, and running
the same command into the same folder again skips it.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import datetime
import html
import io
import itertools
import os
import re
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from bce_helpers.params import SPECS, check_params
from bce_helpers.results import read_results, write_json_atomic, write_text_atomic

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
RUNS_DIR = REPO_ROOT / "runs"
# Per-run noise papermill and Jupyter leave in a notebook: times, paths, widget state.
NOISY_METADATA = ("papermill", "execution", "widgets")
# The test parameter set: small values that run every notebook in seconds (--quick).
QUICK_PARAMS: dict[str, dict[str, Any]] = {
    "01_bce_loss": {"n_points": 51},
    "02_functional_bce": {},
    "03_bce_with_logits": {"z_max": 100.0, "n_points": 201},
    "04_pos_weight": {"n_samples": 1000, "steps": 150},
    "05_mlp_training": {"n_samples": 2000, "epochs": 1},
    "06_circles": {"epochs": 30, "lr": 0.01},
    "07_bce_at_scale": {"max_log2_size": 14, "repeats": 2},
}
STOP = threading.Event()  # set on Ctrl-C: running executions discard their output


class ParameterError(ValueError):
    """Bad command-line input, found before any run: an unknown notebook or parameter, a
    value or combination the notebook's spec refuses, a malformed grid file."""


# ---------------------------------------------------------------- notebooks and parameters


def all_notebooks(notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The suite's numbered notebooks, in order."""
    return sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb"))


def find_notebook(name: str, notebook_dir: Path = NOTEBOOK_DIR) -> Path:
    """A notebook by number ('04'), stem ('04_pos_weight') or file name."""
    notebooks = all_notebooks(notebook_dir)
    stem = Path(name).stem
    matches = [p for p in notebooks if p.stem == stem or p.stem.split("_", 1)[0] == stem]
    if len(matches) != 1:
        known = ", ".join(p.stem for p in notebooks)
        raise ParameterError(f"notebook {name!r} not found; known notebooks: {known}")
    return matches[0]


def inspect_parameters(notebook: Path) -> dict[str, dict[str, str]]:
    """papermill's view of a notebook's parameters cell: name -> default, help."""
    import papermill

    return papermill.inspect_notebook(str(notebook))


def declared_parameters(notebook: Path) -> dict[str, Any]:
    """The names and default values of a notebook's parameters cell, in order."""
    return {n: ast.literal_eval(p["default"]) for n, p in inspect_parameters(notebook).items()}


def coerce_value(name: str, value: Any, default: Any) -> Any:
    """Type a value (a command-line string, or a YAML value) like the declared default."""
    kind = type(default)
    text = value.strip() if isinstance(value, str) else value
    try:
        if isinstance(default, bool):
            if isinstance(text, str) and text.lower() in ("true", "false"):
                return text.lower() == "true"
            if isinstance(text, bool):
                return text
        elif isinstance(default, int):
            if isinstance(text, str):
                return int(text)
            if isinstance(text, int) and not isinstance(text, bool):
                return text
        elif isinstance(default, float):
            if isinstance(text, str | int | float) and not isinstance(text, bool):
                return float(text)
        elif isinstance(default, str) or default is None:
            if default is None and isinstance(text, str) and text == "None":
                return None
            if isinstance(text, str):
                return text
            if default is None and isinstance(text, int | float) and not isinstance(text, bool):
                return text
    except ValueError:
        pass
    kind_name = "a string" if default is None else f"{kind.__name__}"
    raise ParameterError(
        f"parameter {name}: {value!r} is not {kind_name} like its default {default!r}"
    )


def check_parameters(notebook: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Names must be declared, values must fit the defaults' types and the notebook's
    spec (the rules `setup()` applies, combinations included); return typed values."""
    declared = declared_parameters(notebook)
    unknown = [n for n in params if n not in declared]
    if unknown:
        raise ParameterError(
            f"{notebook.stem} has no parameter {', '.join(map(repr, unknown))}; "
            f"declared: {', '.join(declared)}"
        )
    typed = {n: coerce_value(n, v, declared[n]) for n, v in params.items()}
    if notebook.stem in SPECS:  # the suite's own notebooks: the same rules as setup()
        try:
            check_params(notebook.stem, {**declared, **typed})
        except ValueError as exc:
            raise ParameterError(f"{notebook.stem}: {exc}") from None
    return typed


# ---------------------------------------------------------------- executing one notebook


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
) -> None:
    """Execute one notebook into `output` (written atomically), raising on a failed cell.

    A failed run still writes its executed notebook (the error is in it); a run stopped
    by Ctrl-C writes nothing.
    """
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
            if not STOP.is_set() and Path(tmp).stat().st_size:
                nbformat.write(strip_run_metadata(nbformat.read(tmp, as_version=4)), tmp)
                os.replace(tmp, output)
    finally:
        Path(tmp).unlink(missing_ok=True)


def error_line(exc: BaseException) -> str:
    """One line saying why a run failed (the notebook's own exception, not a traceback)."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}".splitlines()[0]
    return (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0]


@dataclass
class RunResult:
    """The outcome of one notebook execution."""

    notebook: str
    status: str  # "ok", "failed" or "skipped" (complete from an earlier invocation)
    seconds: float
    numbers: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    run: str = ""  # the file stem of its outputs
    params: dict[str, Any] = field(default_factory=dict)


def headline_numbers(results: dict[str, Any]) -> dict[str, Any]:
    """The scalar numbers of a results JSON (not its parameters or environment)."""
    skip = {"notebook", "params", "torch_version", "device"}
    return {
        k: v
        for k, v in results.items()
        if k not in skip and isinstance(v, int | float) and not isinstance(v, bool)
    }


@dataclass
class Job:
    """One notebook execution to do: which notebook, with what, named how."""

    notebook: Path
    params: dict[str, Any]
    run: str


def is_complete(out_dir: Path, run: str) -> bool:
    """Both outputs exist (each was renamed into place only when whole)."""
    return (out_dir / f"{run}.ipynb").exists() and (out_dir / f"{run}.json").exists()


def run_job(job: Job, out_dir: Path) -> RunResult:
    """Execute a job into out_dir, or report it skipped if already complete there."""
    results_path = out_dir / f"{job.run}.json"
    base = dict(notebook=job.notebook.stem, run=job.run, params=job.params)
    if is_complete(out_dir, job.run):
        numbers = headline_numbers(read_results(results_path))
        return RunResult(status="skipped", seconds=0.0, numbers=numbers, **base)
    results_path.unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        execute(
            job.notebook,
            out_dir / f"{job.run}.ipynb",
            {**job.params, "results_path": str(results_path)},
            cwd=out_dir,
        )
    except Exception as exc:  # a failed run is reported, not raised
        seconds = time.perf_counter() - start
        return RunResult(status="failed", seconds=seconds, error=error_line(exc), **base)
    finally:
        if STOP.is_set() and not is_complete(out_dir, job.run):
            results_path.unlink(missing_ok=True)  # interrupted: keep nothing partial
    numbers = headline_numbers(read_results(results_path))
    return RunResult(status="ok", seconds=time.perf_counter() - start, numbers=numbers, **base)


def _kill_kernels() -> None:
    """Terminate this process's child processes (the kernels) so running cells stop."""
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:
            with contextlib.suppress(OSError):
                os.kill(int(stat.parent.name), signal.SIGTERM)


def run_jobs(jobs: list[Job], out_dir: Path, n_jobs: int, progress: bool) -> list[RunResult]:
    """Execute jobs n_jobs at a time, in order of submission in the returned list."""
    from tqdm.auto import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".*.ipynb"):  # left by a killed process: never complete
        stale.unlink(missing_ok=True)
    if n_jobs > 1:  # share the cores between kernels rather than oversubscribe them
        threads = max(1, (os.cpu_count() or 1) // n_jobs)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    STOP.clear()
    results: dict[int, RunResult] = {}
    bar = tqdm(total=len(jobs), desc="runs", unit="run", disable=not progress, file=sys.stderr)
    pool = ThreadPoolExecutor(max_workers=max(1, n_jobs))
    futures = {pool.submit(run_job, job, out_dir): i for i, job in enumerate(jobs)}
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                result = future.result()
                results[futures[future]] = result
                bar.update()
                bar.write(f"{result.status:>7}  {result.run}  {result.seconds:.1f} s", sys.stderr)
    except KeyboardInterrupt:
        STOP.set()
        for future in futures:
            future.cancel()
        _kill_kernels()
        pool.shutdown(wait=True)
        bar.close()
        raise
    pool.shutdown(wait=True)
    bar.close()
    return [results[i] for i in range(len(jobs))]


# ---------------------------------------------------------------- reports


def format_number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def describe(result: RunResult) -> str:
    """The numbers of a good run, or the error line of a failed one."""
    if result.status == "failed":
        return result.error
    return ", ".join(f"{k}={format_number(v)}" for k, v in result.numbers.items())


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
    """Render an executed notebook as a standalone HTML page."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    write_text_atomic(target, body)


def write_run_report(out_dir: Path, results: list[RunResult]) -> None:
    """summary.json, summary.md, an HTML page per executed notebook and index.html."""
    write_json_atomic(out_dir / "summary.json", [asdict(r) for r in results])
    md = ["| notebook | status | seconds | headline numbers |", "|---|---|---|---|"]
    md += [f"| {r.run} | {r.status} | {r.seconds:.1f} | {describe(r)} |" for r in results]
    write_text_atomic(out_dir / "summary.md", "\n".join(md) + "\n")
    rows = []
    for r in results:
        executed = out_dir / f"{r.run}.ipynb"
        page = out_dir / f"{r.run}.html"
        if executed.exists():
            try:
                to_html(executed, page)
            except Exception as exc:  # a page that cannot render must not fail good runs
                print(f"warning: no HTML page for {r.run}: {error_line(exc)}", file=sys.stderr)
        link = f'<a href="{page.name}">{html.escape(r.run)}</a>' if page.exists() else r.run
        rows.append(
            f"<tr><td>{link}</td><td>{r.status}</td><td>{r.seconds:.1f}</td>"
            f"<td>{html.escape(describe(r))}</td></tr>"
        )
    write_text_atomic(
        out_dir / "index.html",
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>BCE notebook runs</title>"
        "</head><body><h1>BCE notebook runs</h1><table border='1' cellpadding='4'>"
        "<tr><th>notebook</th><th>status</th><th>seconds</th><th>headline numbers</th></tr>"
        + "".join(rows)
        + "</table></body></html>\n",
    )


def write_sweep_report(out_dir: Path, swept: list[str], results: list[RunResult]) -> None:
    """sweep.csv and sweep.json, and sweep.png: each headline number against each parameter."""
    metrics = sorted({k for r in results for k in r.numbers})
    rows = [
        {"run": r.run, "status": r.status, "seconds": round(r.seconds, 2)}
        | {p: r.params.get(p) for p in swept}
        | {m: r.numbers.get(m) for m in metrics}
        | {"error": r.error}
        for r in results
    ]
    write_json_atomic(out_dir / "sweep.json", rows)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out_dir / "sweep.csv", table.getvalue())
    good = [r for r in results if r.status != "failed"]
    if metrics and good:
        plot_sweep(out_dir / "sweep.png", swept, metrics, good)


def plot_sweep(path: Path, swept: list[str], metrics: list[str], results: list[RunResult]) -> None:
    """One panel per (number, parameter); one line per setting of the other parameters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(metrics), len(swept), figsize=(4.5 * len(swept), 3 * len(metrics)), squeeze=False
    )
    for i, metric in enumerate(metrics):
        for j, param in enumerate(swept):
            ax = axes[i][j]
            others = [p for p in swept if p != param]
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


# ---------------------------------------------------------------- commands


def run_name(stem: str, params: dict[str, Any]) -> str:
    """A file-safe name for a run from its notebook and parameters."""
    if not params:
        return stem
    text = "__".join(f"{k}={v}" for k, v in params.items())
    return stem + "__" + re.sub(r"[^\w.=+-]", "_", text)


def grid(values: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of the values, as one parameter dict per run."""
    names = list(values)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values.values())]


def load_grid(path: Path) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """A YAML grid: `parameters:` (name -> list of values) and optional `fixed:` values.

    Any problem with the file is one ParameterError line naming it (and the line, for a
    YAML syntax error)."""
    import yaml

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ParameterError(f"{path}: cannot read the grid file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParameterError(f"{where}: YAML syntax error: {problem}") from None
    data = {} if data is None else data
    if not isinstance(data, dict) or set(data) - {"parameters", "fixed"}:
        raise ParameterError(
            f"{path}: a grid is a mapping with the keys `parameters:` and optional `fixed:`"
        )
    swept, fixed = data.get("parameters"), data.get("fixed") or {}
    if not isinstance(swept, dict) or not swept:
        raise ParameterError(f"{path}: needs a `parameters:` mapping of name -> list of values")
    if not isinstance(fixed, dict):
        raise ParameterError(f"{path}: `fixed:` must be a mapping of name -> one value")
    swept = {k: v if isinstance(v, list) else [v] for k, v in swept.items()}
    if empty := [k for k, v in swept.items() if not v]:
        raise ParameterError(f"{path}: no values given for {', '.join(empty)}")
    return swept, fixed


def timestamped(prefix: str = "") -> Path:
    return RUNS_DIR / (prefix + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))


def point_latest(out_dir: Path) -> None:
    """Make runs/latest point at out_dir (a relative symlink, replaced atomically)."""
    latest = RUNS_DIR / "latest"
    if latest.exists() and not latest.is_symlink():
        return  # a real folder of that name belongs to someone: leave it
    tmp = RUNS_DIR / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(out_dir, RUNS_DIR))
    os.replace(tmp, latest)


def cmd_run(args: argparse.Namespace) -> int:
    notebooks = [find_notebook(n) for n in args.notebooks] if args.notebooks else all_notebooks()
    given = dict(args.param or [])
    jobs = []
    for nb in notebooks:
        raw = {**(QUICK_PARAMS.get(nb.stem, {}) if args.quick else {}), **given}
        if args.notebooks or not given:
            params = check_parameters(nb, raw)
        else:  # -p for all notebooks: each takes the names it declares
            declared = declared_parameters(nb)
            params = check_parameters(nb, {k: v for k, v in raw.items() if k in declared})
        jobs.append(Job(nb, params, nb.stem))
    if given and not args.notebooks:
        used = {k for job in jobs for k in job.params}
        if unused := sorted(set(given) - used):
            raise ParameterError(f"no notebook declares parameter(s) {unused}")
    out_dir = args.out or timestamped()
    results = run_jobs(jobs, out_dir, args.jobs, progress=not args.no_progress)
    write_run_report(out_dir, results)
    if args.out is None:
        point_latest(out_dir)
    return report(results, out_dir)


def sweep_jobs(nb: Path, swept: dict[str, list[Any]], fixed: dict[str, Any]) -> list[Job]:
    """One job per combination, every combination checked in full before any runs."""
    declared = declared_parameters(nb)
    if unknown := [n for n in [*swept, *fixed] if n not in declared]:
        raise ParameterError(
            f"{nb.stem} has no parameter {', '.join(map(repr, unknown))}; "
            f"declared: {', '.join(declared)}"
        )
    if empty := [n for n, v in swept.items() if not v]:
        raise ParameterError(f"no values given for {', '.join(empty)}")
    fixed = {n: coerce_value(n, v, declared[n]) for n, v in fixed.items()}
    swept = {n: [coerce_value(n, v, declared[n]) for v in vs] for n, vs in swept.items()}
    combos = grid(swept)
    return [
        Job(nb, check_parameters(nb, {**fixed, **combo}), run_name(nb.stem, combo))
        for combo in combos
    ]


def cmd_sweep(args: argparse.Namespace) -> int:
    nb = find_notebook(args.notebook)
    if args.grid:
        swept, fixed = load_grid(args.grid)
        try:
            jobs = sweep_jobs(nb, swept, fixed)
        except ParameterError as exc:
            raise ParameterError(f"{args.grid}: {exc}") from None
    elif args.param:
        swept = {name: values for name, *values in args.param}
        jobs = sweep_jobs(nb, swept, {})
    else:
        raise ParameterError("sweep needs --grid FILE.yaml or -p NAME V1 V2 ...")
    out_dir = args.out or timestamped(f"sweep-{nb.stem}-")
    results = run_jobs(jobs, out_dir, args.jobs, progress=not args.no_progress)
    write_sweep_report(out_dir, list(swept), results)
    return report(results, out_dir)


def cmd_list(_: argparse.Namespace) -> int:
    for nb in all_notebooks():
        title = nbformat.read(nb, as_version=4).cells[0].source.splitlines()[0]
        print(f"{nb.stem}: {title.lstrip('# ').split('· ', 1)[-1]}")
        for name, p in inspect_parameters(nb).items():
            print(f"    {name} = {p['default']:<12}  # {p['help']}")
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    notebooks = [find_notebook(n) for n in args.notebooks] if args.notebooks else all_notebooks()
    for nb in notebooks:
        start = time.perf_counter()
        print(f"refreshing {nb.name} ...", end=" ", flush=True)
        execute(nb, nb, cwd=nb.parent)
        print(f"{time.perf_counter() - start:.1f} s", flush=True)
    return 0


def report(results: list[RunResult], out_dir: Path) -> int:
    """Print the table and the failures; 0 if every run is good, else 1."""
    print()
    print(format_table(results))
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        print(f"FAILED {r.run}: {r.error}", file=sys.stderr)
    print(f"\noutputs in {out_dir}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    """The command line's subcommands and options."""
    parser = argparse.ArgumentParser(
        prog="python -m bce_helpers", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    default_jobs = os.cpu_count() or 1

    run_p = sub.add_parser("run", help="execute notebooks with their results and a report")
    run_p.add_argument("notebooks", nargs="*", help="numbers or names, e.g. 04 (default: all)")
    run_p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"))
    run_p.add_argument("--out", type=Path, help="output folder (default: runs/<timestamp>)")
    run_p.add_argument("--jobs", type=int, default=default_jobs, help="runs at a time")
    run_p.add_argument("--quick", action="store_true", help="the test parameter set")
    run_p.add_argument("--no-progress", action="store_true", help="no progress bar")
    run_p.set_defaults(func=cmd_run)

    sweep_p = sub.add_parser("sweep", help="one run per combination of parameter values")
    sweep_p.add_argument("notebook")
    sweep_p.add_argument("--grid", type=Path, help="YAML: parameters: {name: [values]}")
    sweep_p.add_argument("-p", "--param", nargs="+", action="append", metavar="NAME V1")
    sweep_p.add_argument("--out", type=Path, help="output folder (default: runs/sweep-...)")
    sweep_p.add_argument("--jobs", type=int, default=default_jobs, help="runs at a time")
    sweep_p.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep_p.set_defaults(func=cmd_sweep)

    list_p = sub.add_parser("list", help="the notebooks and their parameters")
    list_p.set_defaults(func=cmd_list)

    ref_p = sub.add_parser("refresh", help="re-execute the committed notebooks in place")
    ref_p.add_argument("notebooks", nargs="*", help="numbers or names (default: all)")
    ref_p.set_defaults(func=cmd_refresh)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the command; exit status 2 for bad input."""
    args = build_parser().parse_args(argv)
    if getattr(args, "jobs", 1) < 1:
        print(f"error: --jobs must be at least 1, got {args.jobs}", file=sys.stderr)
        return 2
    out = getattr(args, "out", None)
    if out is not None and Path(out).resolve().is_relative_to(NOTEBOOK_DIR.resolve()):
        print(f"error: --out {out} is inside notebooks/: runs never write there", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except ParameterError as exc:  # bad notebook name or parameter: before any kernel started
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: running notebooks stopped, no partial outputs kept", file=sys.stderr)
        return 130
