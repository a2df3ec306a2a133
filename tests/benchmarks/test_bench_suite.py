"""benchmarks/bench_suite.py in-process, with the suite's runs, the kernel and the clock
replaced: the commands it runs are ones the command line accepts and plans as the
docstring says (the whole suite at --quick, 16 runs of 04), its figures follow by hand
from the reports the command writes, and bad arguments stop it before anything runs."""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from bce_suite import cli, reports
from bce_suite.runs import RunResult
from tests.checkout import NOTEBOOK_DIR, REPO_ROOT, all_notebooks

spec = importlib.util.spec_from_file_location(
    "bench_suite", REPO_ROOT / "benchmarks" / "bench_suite.py"
)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def accepted(cmd: list[str]):
    """The plan `bce-notebooks` makes of this command line (refused: ParameterError)."""
    assert Path(cmd[0]).name == "bce-notebooks" and Path(cmd[0]).is_file()
    args = cli.build_parser().parse_args(cmd[1:])
    cli.check_options(args, NOTEBOOK_DIR)
    return args, args.plan(args, NOTEBOOK_DIR)


@pytest.fixture
def machine(monkeypatch):
    """bench_suite with its subprocesses, kernel, clock and load average replaced: `runs`
    holds each command run, `reply` what a run writes into its --out folder (and, if it
    returns one, the finished process: its status and output)."""
    state = SimpleNamespace(runs=[], reply=None)

    def run(cmd, check, capture_output, text):
        assert not check and capture_output and text
        state.runs.append(cmd)
        done = state.reply(cmd, Path(cmd[cmd.index("--out") + 1]))
        return done or subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(bench, "subprocess", SimpleNamespace(run=run))
    monkeypatch.setattr(bench, "kernel_costs", lambda: (1.5, 2.5))
    loads = iter([(0.5, 0.4, 0.3), (1.7, 0.6, 0.4)])
    monkeypatch.setattr(
        bench, "os", SimpleNamespace(getloadavg=loads.__next__, cpu_count=lambda: 5)
    )
    return state


def clock(monkeypatch, *readings: float) -> None:
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=iter(readings).__next__))


def printed(capsys) -> str:
    """What was printed, each run of spaces made one (the columns' widths aside)."""
    return "\n".join(" ".join(line.split()) for line in capsys.readouterr().out.splitlines())


def test_the_suite_is_timed_and_split_into_start_up_and_compute(machine, monkeypatch, capsys):
    def reply(cmd, out):
        args, plan = accepted(cmd)
        assert args.quick and args.no_progress and args.jobs == 3
        assert [job.notebook for job in plan.jobs] == all_notebooks()
        reports.write_run_report(
            out,
            [
                RunResult("01_bce_loss", "ok", 12.0, run="01_bce_loss"),
                RunResult("04_pos_weight", "ok", 7.5, run="04_pos_weight"),
                RunResult("06_circles", "ok", 4.5, run="06_circles"),
            ],
        )

    machine.reply = reply
    clock(monkeypatch, 100.0, 141.3)
    monkeypatch.setattr(sys, "argv", ["bench_suite.py", "--jobs", "3"])
    bench.main()
    assert len(machine.runs) == 1
    # by hand: 141.3 - 100.0 = 41.3 s; 12.0 + 7.5 + 4.5 = 24.0 s over 3; a notebook's
    # start-up 1.5 + 2.5 = 4.0 s, so 3 x 4.0 = 12.0 s of the 24.0, and 24.0 - 12.0 = 12.0 left
    assert printed(capsys).splitlines() == [
        "suite at the test parameter set, --jobs 3: 41.3 s wall (goal <= 60 s)",
        "load average (1 min) before 0.5, after 1.7",
        "sum of per-notebook times: 24.0 s over 3 notebooks",
        "01_bce_loss 12.0 s ok",
        "04_pos_weight 7.5 s ok",
        "06_circles 4.5 s ok",
        "per notebook: kernel start 1.5 s + imports 2.5 s = 4.0 s",
        "so start-up is 12.0 s of the 24.0 s;",
        "compute and papermill's own work make up the other 12.0 s",
    ]


@pytest.mark.parametrize(
    ("argv", "engine", "where"),
    [
        ([], {"jobs": 5, "scheduler": None}, "local cluster, --jobs 5"),  # one job per core
        (["--jobs", "3"], {"jobs": 3, "scheduler": None}, "local cluster, --jobs 3"),
        (
            ["--scheduler", "tcp://10.0.0.7:8786"],
            {"jobs": None, "scheduler": "tcp://10.0.0.7:8786"},
            "--scheduler tcp://10.0.0.7:8786",
        ),
    ],
)
def test_the_sweep_is_16_runs_of_04_on_the_cluster_asked_for(
    machine, monkeypatch, capsys, argv, engine, where
):
    def reply(cmd, out):
        args, plan = accepted(cmd)
        assert {"jobs": args.jobs, "scheduler": args.scheduler} == engine
        # 8 values of pos_weight times 2 seeds, at 150 steps on 1000 samples
        assert len(plan.jobs) == 16
        assert {job.notebook.name[:3] for job in plan.jobs} == {"04_"}
        assert {(j.params["steps"], j.params["n_samples"]) for j in plan.jobs} == {(150, 1000)}
        results = [
            RunResult(j.notebook.stem, "ok", 1.0, run=j.run, params=j.params) for j in plan.jobs
        ]
        reports.write_sweep_report(out, plan.swept, results)

    machine.reply = reply
    clock(monkeypatch, 5.0, 17.5)
    monkeypatch.setattr(sys, "argv", ["bench_suite.py", "--sweep", *argv])
    bench.main()
    assert len(machine.runs) == 1
    assert printed(capsys).splitlines() == [
        f"sweep of 16 runs of 04 ({where}): 12.5 s wall",
        "load average (1 min) before 0.5, after 1.7",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--jobs", "two"], "argument --jobs: invalid int value: 'two'"),
        (["--sweep", "--jobs"], "argument --jobs: expected one argument"),
        (["--repeats", "3"], "unrecognized arguments: --repeats 3"),
        (["--jobs", "0"], "argument --jobs: 0 is not allowed: at least 1 worker"),
        (["--sweep", "--jobs", "-2"], "argument --jobs: -2 is not allowed: at least 1 worker"),
        (
            ["--scheduler", "tcp://10.0.0.7:8786"],
            "argument --scheduler: tcp://10.0.0.7:8786 is only for --sweep "
            "(the suite's timing starts its own local cluster)",
        ),
        (
            ["--sweep", "--jobs", "3", "--scheduler", "tcp://10.0.0.7:8786"],
            "argument --jobs: 3 is not allowed with --scheduler tcp://10.0.0.7:8786 "
            "(the cluster's own workers run the sweep): drop one of the two",
        ),
    ],
)
def test_bad_arguments_stop_it_with_status_2_before_anything_runs(
    machine, monkeypatch, capsys, argv, message
):
    monkeypatch.setattr(sys, "argv", ["bench_suite.py", *argv])
    with pytest.raises(SystemExit) as stop:
        bench.main()
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert machine.runs == []


def test_a_failed_command_stops_it_with_its_status_and_the_end_of_its_stderr():
    # a real process: 30 numbered lines on stderr, one on stdout, exit status 3
    script = (
        "import sys; print('the table'); "
        "sys.stderr.write(''.join(f'line {i}\\n' for i in range(1, 31))); sys.exit(3)"
    )
    with pytest.raises(SystemExit) as stop:
        bench.run([sys.executable, "-c", script])
    first, *shown = stop.value.code.splitlines()
    assert first == f"{sys.executable} -c {script} failed (exit 3):"
    assert shown == [f"line {i}" for i in range(11, 31)]  # the last 20 lines, the error last


def test_a_failed_suite_run_stops_it_before_the_kernel_is_timed(machine, monkeypatch, capsys):
    error = "FAILED 04_pos_weight: RuntimeError: shape mismatch"
    machine.reply = lambda cmd, out: subprocess.CompletedProcess(cmd, 1, "", f"{error}\n")
    monkeypatch.setattr(bench, "kernel_costs", lambda: pytest.fail("the kernel was timed"))
    clock(monkeypatch, 100.0, 141.3)
    monkeypatch.setattr(sys, "argv", ["bench_suite.py", "--jobs", "3"])
    with pytest.raises(SystemExit) as stop:
        bench.main()
    (cmd,) = machine.runs
    assert stop.value.code == f"{' '.join(cmd)} failed (exit 1):\n{error}"
    assert capsys.readouterr().out == ""


def findable(name: str) -> bool:
    """Whether a dotted module is installed, found on the path without importing it."""
    top, *parts = name.split(".")
    found = importlib.util.find_spec(top)
    for part in parts:
        if found is None or found.submodule_search_locations is None:
            return False
        found = importlib.machinery.PathFinder.find_spec(part, found.submodule_search_locations)
    return found is not None


def test_the_imports_timed_in_a_kernel_are_modules_that_exist():
    assert not findable("matplotlib.no_such_module") and not findable("no_such_package")
    tree = ast.parse(bench.IMPORTS)
    names = [alias.name for node in tree.body for alias in node.names]
    assert names and all(isinstance(node, ast.Import) for node in tree.body)
    assert [name for name in names if not findable(name)] == []
