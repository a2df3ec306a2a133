"""Run the suite's notebooks from the command line, on Dask.

    bce-notebooks run [NOTEBOOK ...] [-p NAME VALUE ...] [--out DIR] [--jobs N]
    bce-notebooks sweep NOTEBOOK (--grid FILE.yaml | -p NAME V1 V2 ...) [--jobs N]
    bce-notebooks list
    bce-notebooks refresh [NOTEBOOK ...]

`python -m bce_suite` is the same command. Parameters are checked against each
notebook's parameters cell before any task is submitted. Runs execute on a local Dask
cluster of --jobs worker processes (started and stopped by the command), or with
--scheduler ADDRESS on an existing cluster; one failing run does not stop the others. The
client writes every output atomically, and running the same command into the same folder
again skips the runs complete there with the same parameters. Exit status: 0 all runs
good, 1 some failed, 2 refused before any run, 130 interrupted.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from bce_suite import notebooks, parameters
from bce_suite.execute import execute
from bce_suite.parameters import ParameterError
from bce_suite.reports import print_report, write_run_report, write_sweep_report
from bce_suite.runs import Job

INTERRUPTED = "\ninterrupted: tasks cancelled, kernels stopped, no partial outputs kept"


@dataclass
class Plan:
    """What a command will do, fully checked: the runs, where, on which cluster."""

    jobs: list[Job]
    out_dir: Path
    swept: list[str] | None = None
    point_latest: bool = False
    notebooks: list[Path] = field(default_factory=list)


def make_job(nb: Path, given: dict[str, Any], name: str) -> Job:
    """A job for a notebook with parameters already checked."""
    declared = parameters.declared_parameters(nb)
    return Job(
        nb,
        given,
        name,
        effective=parameters.effective_parameters(nb, given),
        writes_results="results_path" in declared,
        priority=later_first(nb),
    )


def later_first(nb: Path) -> int:
    """A run's priority: its notebook's number. The later lessons do the long work (training
    models, timing kernels): started first, the short early ones fill the workers' gaps,
    and no worker is left running a long notebook alone at the end."""
    return int(nb.stem.split("_", 1)[0])


def runs_dir() -> Path:
    """runs/ in the working directory: where outputs go without --out."""
    return Path.cwd() / "runs"


def timestamped(prefix: str = "") -> Path:
    """A new folder name under runs/ for this invocation."""
    return runs_dir() / (prefix + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))


def point_latest(out_dir: Path) -> None:
    """Make runs/latest point at out_dir (a relative symlink, replaced atomically)."""
    latest = runs_dir() / "latest"
    if latest.exists() and not latest.is_symlink():
        return  # a real folder of that name belongs to someone: leave it
    tmp = runs_dir() / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(out_dir, runs_dir()))
    os.replace(tmp, latest)


def plan_run(args: argparse.Namespace, folder: Path) -> Plan:
    """Check a `run` command: every notebook's parameters, before any task."""
    chosen = (
        [notebooks.find_notebook(n, folder) for n in args.notebooks]
        if args.notebooks
        else notebooks.all_notebooks(folder)
    )
    given = dict(args.param or [])
    jobs = []
    for nb in chosen:
        quick = parameters.QUICK_PARAMS.get(nb.stem, {}) if args.quick else {}
        raw = {**quick, **given}
        if not args.notebooks and given:  # -p for all notebooks: each takes its own names
            declared = parameters.declared_parameters(nb)
            raw = {k: v for k, v in raw.items() if k in declared}
        jobs.append(make_job(nb, parameters.check_parameters(nb, raw), nb.stem))
    if given and not args.notebooks:
        used = {k for job in jobs for k in job.params}
        if unused := sorted(set(given) - used):
            raise ParameterError(f"no notebook declares parameter(s) {unused}")
    return Plan(jobs, args.out or timestamped(), point_latest=args.out is None)


def plan_sweep(args: argparse.Namespace, folder: Path) -> Plan:
    """Check a `sweep` command: every combination in full, before any task."""
    nb = notebooks.find_notebook(args.notebook, folder)
    if args.grid:
        swept, fixed = parameters.load_grid(args.grid)
        try:
            combos = parameters.sweep_parameters(nb, swept, fixed)
        except ParameterError as exc:
            raise ParameterError(f"{args.grid}: {exc}") from None
    elif args.param:
        swept = {name: values for name, *values in args.param}
        combos = parameters.sweep_parameters(nb, swept, {})
    else:
        raise ParameterError("sweep needs --grid FILE.yaml or -p NAME V1 V2 ...")
    names = parameters.run_names(nb.stem, [combo for combo, _ in combos])
    jobs = [make_job(nb, given, name) for (_, given), name in zip(combos, names, strict=True)]
    return Plan(jobs, args.out or timestamped(f"sweep-{nb.stem}-"), swept=list(swept))


def cmd_list(args: argparse.Namespace, folder: Path) -> int:
    """Print each notebook's title and parameters."""
    for nb in notebooks.all_notebooks(folder):
        title = nbformat.read(nb, as_version=4).cells[0].source.splitlines()[0]
        print(f"{nb.stem}: {title.lstrip('# ').split('· ', 1)[-1]}")
        for name, p in parameters.inspect_parameters(nb).items():
            print(f"    {name} = {p['default']:<12}  # {p['help']}")
    return 0


def cmd_refresh(args: argparse.Namespace, folder: Path) -> int:
    """Re-execute notebooks in place, one after the other, on this machine."""
    chosen = (
        [notebooks.find_notebook(n, folder) for n in args.notebooks]
        if args.notebooks
        else notebooks.all_notebooks(folder)
    )
    for nb in chosen:
        start = time.perf_counter()
        print(f"refreshing {nb.name} ...", end=" ", flush=True)
        execute(nb, nb, cwd=nb.parent)
        print(f"{time.perf_counter() - start:.1f} s", flush=True)
    return 0


def execute_plan(plan: Plan, args: argparse.Namespace) -> int:
    """Run the planned jobs, write the reports, print the table; 0 or 1."""
    from bce_suite import engine  # Dask: only where notebooks run

    results = engine.run_jobs(
        plan.jobs,
        plan.out_dir,
        args.jobs or engine.default_workers(),
        progress=not args.no_progress,
        scheduler=args.scheduler,
    )
    if plan.swept is None:
        write_run_report(plan.out_dir, results)
    else:
        write_sweep_report(plan.out_dir, plan.swept, results)
    if plan.point_latest:
        point_latest(plan.out_dir)
    return print_report(results, plan.out_dir)


def build_parser() -> argparse.ArgumentParser:
    """The command line's subcommands and options."""
    parser = argparse.ArgumentParser(prog="bce-notebooks", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--notebooks",
        type=Path,
        dest="notebook_dir",
        metavar="DIR",
        help="the notebooks' folder (default: ./notebooks, ., or the source checkout)",
    )
    engine_opts = argparse.ArgumentParser(add_help=False)
    engine_opts.add_argument(
        "--jobs", type=int, help="local cluster: worker processes (default: one per core)"
    )
    engine_opts.add_argument(
        "--scheduler", metavar="ADDRESS", help="an existing Dask cluster, e.g. tcp://host:8786"
    )
    engine_opts.add_argument("--no-progress", action="store_true", help="no progress bar")

    run_p = sub.add_parser(
        "run", parents=[where, engine_opts], help="execute notebooks with results and a report"
    )
    run_p.add_argument("notebooks", nargs="*", help="numbers or names, e.g. 04 (default: all)")
    run_p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"))
    run_p.add_argument("--out", type=Path, help="output folder (default: runs/<timestamp>)")
    run_p.add_argument("--quick", action="store_true", help="the test parameter set")
    run_p.set_defaults(plan=plan_run)

    sweep_p = sub.add_parser(
        "sweep", parents=[where, engine_opts], help="one run per combination of values"
    )
    sweep_p.add_argument("notebook")
    sweep_p.add_argument("--grid", type=Path, help="YAML: parameters: {name: [values]}")
    sweep_p.add_argument("-p", "--param", nargs="+", action="append", metavar="NAME V1")
    sweep_p.add_argument("--out", type=Path, help="output folder (default: runs/sweep-...)")
    sweep_p.set_defaults(plan=plan_sweep)

    list_p = sub.add_parser("list", parents=[where], help="the notebooks and their parameters")
    list_p.set_defaults(command_func=cmd_list)

    ref_p = sub.add_parser(
        "refresh", parents=[where], help="re-execute the committed notebooks in place"
    )
    ref_p.add_argument("notebooks", nargs="*", help="numbers or names (default: all)")
    ref_p.set_defaults(command_func=cmd_refresh)
    return parser


def check_options(args: argparse.Namespace, folder: Path) -> None:
    """Refuse option values before anything runs."""
    jobs = getattr(args, "jobs", None)
    if jobs is not None and jobs < 1:
        raise ParameterError(f"--jobs must be at least 1, got {jobs}")
    if jobs is not None and getattr(args, "scheduler", None):
        raise ParameterError(
            "--jobs sets the local cluster's workers; with --scheduler the cluster's "
            "own workers run the tasks: drop one of the two"
        )
    out = getattr(args, "out", None)
    if out is not None and Path(out).resolve().is_relative_to(folder):
        raise ParameterError(f"--out {out} is inside {folder}: runs never write there")


def main(argv: list[str] | None = None) -> int:
    """Parse and check the command line (exit status 2 if refused), then run it."""
    args = build_parser().parse_args(argv)
    try:
        try:
            folder = notebooks.notebook_dir(args.notebook_dir)
            check_options(args, folder)
            if hasattr(args, "command_func"):  # list, refresh: names checked as they go
                return args.command_func(args, folder)
            plan = args.plan(args, folder)
        except ParameterError as exc:  # before any run: bad notebook, parameter or option
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return execute_plan(plan, args)
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
