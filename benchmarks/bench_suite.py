"""The whole suite at the test parameter set (`run --quick`), timed, with where time goes.

Prints the wall time of `bce-notebooks run --quick --jobs N` on the local Dask
cluster (goal: at most 60 s on a 2-core machine, the cluster's and the kernels' start-up
included), then splits one notebook's cost into kernel start, imports and compute,
measured on a kernel of its own. With --sweep, times a sweep of 16 runs of 04 at small
parameters instead (on an existing cluster with --scheduler ADDRESS, which takes no --jobs).
The machine's load average is printed before and after: on a shared machine, compare
figures taken at similar loads. A command that fails stops it with its stderr's last lines.
Usage:

    .venv/bin/python benchmarks/bench_suite.py [--jobs 2] [--sweep [--scheduler ADDRESS]]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The command, installed beside this Python (the venv's console script)
COMMAND = str(Path(sys.executable).with_name("bce-notebooks"))
IMPORTS = (
    "import torch, torchvision, matplotlib.pyplot, sklearn.datasets, tqdm.auto\n"
    "import bce_helpers.params, bce_helpers.plots, bce_helpers.data, bce_helpers.losses"
)
# How much of a failed command's stderr is shown: its error and the frames that led to it
STDERR_LINES = 20


def run(cmd: list[str]) -> None:
    """Run a command, its output captured (the timing prints its own lines); if it fails,
    stop with its exit status and the end of what it wrote to stderr."""
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-STDERR_LINES:])
        raise SystemExit(f"{' '.join(cmd)} failed (exit {done.returncode}):\n{tail}")


def kernel_costs() -> tuple[float, float]:
    """Seconds to start a python3 kernel, and to run the notebooks' imports in it."""
    from jupyter_client.manager import start_new_kernel

    start = time.perf_counter()
    km, kc = start_new_kernel(kernel_name="python3")
    started = time.perf_counter() - start
    try:
        start = time.perf_counter()
        reply = kc.execute_interactive(IMPORTS, timeout=120)
        assert reply["content"]["status"] == "ok", reply["content"]
        imports = time.perf_counter() - start
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return started, imports


SWEEP_04 = ["sweep", "04", "-p", "pos_weight", "1", "2", "3", "4", "5", "6", "7", "8"]
SWEEP_04 += ["-p", "seed", "1", "2", "-p", "steps", "150", "-p", "n_samples", "1000"]


def timed_sweep(jobs: int, scheduler: str | None) -> None:
    """Wall time of 16 runs of 04 at small parameters, with the load around it."""
    engine = ["--scheduler", scheduler] if scheduler else ["--jobs", str(jobs)]
    with tempfile.TemporaryDirectory() as out:
        cmd = [COMMAND, *SWEEP_04, *engine, "--no-progress"]
        load = os.getloadavg()[0]
        start = time.perf_counter()
        run([*cmd, "--out", out])
        wall = time.perf_counter() - start
        rows = json.loads((Path(out) / "sweep.json").read_text())
    where = f"--scheduler {scheduler}" if scheduler else f"local cluster, --jobs {jobs}"
    print(f"sweep of {len(rows)} runs of 04 ({where}): {wall:.1f} s wall")
    print(f"  load average (1 min) before {load:.1f}, after {os.getloadavg()[0]:.1f}")


def checked_arguments() -> argparse.Namespace:
    """The command line; a value the timed command would refuse, or one it would not use,
    stops it here as argparse does (exit status 2), before anything runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, help="local cluster's workers (default: one per core)")
    parser.add_argument("--sweep", action="store_true", help="16 runs of 04 instead")
    parser.add_argument("--scheduler", help="with --sweep: an existing Dask cluster")
    args = parser.parse_args()
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"argument --jobs: {args.jobs} is not allowed: at least 1 worker")
    if args.scheduler is not None and not args.sweep:
        parser.error(
            f"argument --scheduler: {args.scheduler} is only for --sweep "
            "(the suite's timing starts its own local cluster)"
        )
    if args.scheduler is not None and args.jobs is not None:
        parser.error(
            f"argument --jobs: {args.jobs} is not allowed with --scheduler {args.scheduler} "
            "(the cluster's own workers run the sweep): drop one of the two"
        )
    if args.jobs is None:
        args.jobs = os.cpu_count() or 1
    return args


def main() -> None:
    """Time the suite at --quick (or, with --sweep, 16 runs of 04) and print the figures."""
    args = checked_arguments()
    if args.sweep:
        timed_sweep(args.jobs, args.scheduler)
        return
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as out:
        cmd = [COMMAND, "run", "--quick", "--no-progress"]
        cmd += ["--jobs", str(args.jobs), "--out", out]
        start = time.perf_counter()
        run(cmd)
        wall = time.perf_counter() - start
        summary = json.loads((Path(out) / "summary.json").read_text())
    kernel, imports = kernel_costs()
    total = sum(r["seconds"] for r in summary)
    print(f"suite at the test parameter set, --jobs {args.jobs}: {wall:.1f} s wall (goal <= 60 s)")
    print(f"  load average (1 min) before {load:.1f}, after {os.getloadavg()[0]:.1f}")
    print(f"  sum of per-notebook times: {total:.1f} s over {len(summary)} notebooks")
    for r in summary:
        print(f"    {r['run']:<22} {r['seconds']:5.1f} s  {r['status']}")
    per_nb = kernel + imports
    print(f"  per notebook: kernel start {kernel:.1f} s + imports {imports:.1f} s = {per_nb:.1f} s")
    print(f"  so start-up is {len(summary) * per_nb:.1f} s of the {total:.1f} s;")
    rest = total - len(summary) * per_nb
    print(f"  compute and papermill's own work make up the other {rest:.1f} s")


if __name__ == "__main__":
    main()
