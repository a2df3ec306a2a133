"""The whole suite at the test parameter set (`run --quick`), timed, with where time goes.

Prints the wall time of `bce-notebooks run --quick --jobs N` on the local Dask
cluster (goal: at most 60 s on a 2-core machine, the cluster's and the kernels' start-up
included), then splits one notebook's cost into kernel start, imports and compute,
measured on a kernel of its own. With --sweep, times a sweep of 16 runs of 04 at small
parameters instead (add --scheduler ADDRESS for an existing cluster). The machine's load
average is printed before and after: on a shared machine, compare figures taken at
similar loads. Usage:

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
        subprocess.run([*cmd, "--out", out], check=True, capture_output=True)
        wall = time.perf_counter() - start
        rows = json.loads((Path(out) / "sweep.json").read_text())
    where = f"--scheduler {scheduler}" if scheduler else f"local cluster, --jobs {jobs}"
    print(f"sweep of {len(rows)} runs of 04 ({where}): {wall:.1f} s wall")
    print(f"  load average (1 min) before {load:.1f}, after {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--sweep", action="store_true", help="16 runs of 04 instead")
    parser.add_argument("--scheduler", help="with --sweep: an existing Dask cluster")
    args = parser.parse_args()
    if args.sweep:
        timed_sweep(args.jobs, args.scheduler)
        return
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as out:
        cmd = [COMMAND, "run", "--quick", "--no-progress"]
        cmd += ["--jobs", str(args.jobs), "--out", out]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
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
