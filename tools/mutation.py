"""Mutation testing of bce_helpers modules with mutmut, against the fast unit tests only.

    python tools/mutation.py params checks losses      # one score line per module
    python tools/mutation.py fast/training bce_suite/resume.py --jobs 1
    python tools/mutation.py losses --tests tests/bce_helpers/test_losses.py

A module is a name in bce_helpers (train), a path below it (fast/training) or a file's path
(bce_suite/resume.py). Its tests are the test file at the mirrored path
(bce_helpers/fast/training.py: tests/bce_helpers/fast/test_training.py) unless TESTS or
--tests say otherwise. Each module is mutated in its own copy of the packages under
build/mutation/<module>/ (the checkout itself is never touched, so other work can go on
beside it), and only its unit test files run against each mutant: no notebook, no browser.
The score is killed / total, where a mutant that makes the tests time out counts as killed
and one no test reaches counts as surviving. Every survivor is printed as a diff.
Exit status 1 if a module scores below --min-score (default 0: report only), or if none of
mutmut's results counts for it (nothing to score is an error, never a pass). Module names,
test files, --jobs and --min-score are all checked before the first module is mutated.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutation"

# Modules checked by more than their own test file (keyed by the module's path); every other
# module: its mirrored test file (see test_files).
TESTS = {
    "bce_suite/parameters.py": [
        "tests/bce_suite/test_parameters.py",
        "tests/bce_suite/test_cli.py",
    ],
}
# Parts of a module (keyed by its path) that belong to another one's tests: mutants named so
# are not counted.
EXCLUDE: dict[str, list[str]] = {}
# Read by tests, not mutated: the runner's tests find the lessons by number, and check
# the example grids.
DATA = ["notebooks", "grids"]
# Never slow layers, whatever the test files hold.
MARKERS = "not notebook and not browser and not fresh_clone"
CAUGHT = {"killed", "timeout"}
RESULT_LINE = re.compile(r"^\s+(\S+): (.+)$")


def source_of(module: str) -> str:
    """The file a module name or path stands for: params -> bce_helpers/params.py,
    fast/training -> bce_helpers/fast/training.py; a path ending in .py is itself."""
    path = module if module.endswith(".py") else f"bce_helpers/{module.strip('/')}.py"
    if not (ROOT / path).is_file():
        raise SystemExit(f"{path} does not exist")
    return path


def mirrored_test(source: str) -> str:
    """The module's own test file: tests/ + its folder + test_<stem>.py, where a package's
    __init__.py has test_init.py (the layout rule of tests/test_layout.py, which checks
    that every module has that file; tests/tools/test_mutation.py checks the two agree)."""
    path = Path(source)
    stem = "init" if path.stem == "__init__" else path.stem
    return (Path("tests") / path.parent / f"test_{stem}.py").as_posix()


def test_files(source: str) -> list[str]:
    """The unit test files run against a module's mutants."""
    files = TESTS.get(source, [mirrored_test(source)])
    missing = [f for f in files if not (ROOT / f).is_file()]
    if missing:
        raise SystemExit(f"no unit tests for {source!r}: {missing} not found; pass --tests")
    return files


def packages() -> list[str]:
    """The repository's top-level Python packages (what the tests import)."""
    return sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "tests")


def prepare(source: str, tests: list[str]) -> Path:
    """A fresh copy of the packages and the tests, configured to mutate one module."""
    work = WORK / Path(source).with_suffix("").as_posix().replace("/", ".")
    shutil.rmtree(work, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "artifacts")
    for package in packages():
        shutil.copytree(ROOT / package, work / package, ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    for folder in DATA:
        shutil.copytree(ROOT / folder, work / folder, ignore=ignore)
    pyproject = (ROOT / "pyproject.toml").read_text()
    pyproject = re.sub(r"(?ms)^\[tool\.mutmut\].*?(?=^\[|\Z)", "", pyproject)
    package = Path(source).parts[0]
    others = ", ".join(f'"{p}/"' for p in [*packages(), *DATA] if p != package)
    args = ", ".join(f'"{a}"' for a in ["-m", MARKERS, "-p", "no:cacheprovider", "-q"])
    selection = ", ".join(f'"{t}"' for t in tests)
    pyproject += (
        "\n[tool.mutmut]\n"
        f'source_paths = ["{package}"]\n'
        f'only_mutate = ["{source}"]\n'
        f"also_copy = [{others}]\n"
        f"pytest_add_cli_args = [{args}]\n"
        f"pytest_add_cli_args_test_selection = [{selection}]\n"
        'process_isolation = "forkserver"\n'  # torch is not fork-safe after it has run
        "use_git_change_detection = false\n"
    )
    (work / "pyproject.toml").write_text(pyproject)
    return work


def mutmut(work: Path, *args: str) -> str:
    """Run mutmut in the work folder and return its output (also kept in mutmut.log)."""
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", *args],
        cwd=work,
        check=False,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    with open(work / "mutmut.log", "a") as log:
        log.write(done.stdout)
    if done.returncode != 0:
        raise SystemExit(
            f"mutmut {' '.join(args)} failed (exit {done.returncode}); see {work / 'mutmut.log'}"
        )
    return done.stdout


def statuses(work: Path) -> dict[str, str]:
    """Each mutant's name and verdict."""
    out = mutmut(work, "results", "--all", "true")
    return {m[1]: m[2] for m in map(RESULT_LINE.match, out.splitlines()) if m}


def checked_arguments(argv: list[str] | None) -> argparse.Namespace:
    """The command line, every value checked before any module is copied or mutated; a bad
    one stops it as argparse does (usage, the argument and its value, exit status 2)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "modules",
        nargs="+",
        help="module names (params), paths in bce_helpers (fast/training) or files "
        "(bce_suite/resume.py)",
    )
    parser.add_argument("--tests", nargs="+", help="test files (default: the module's own)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--exclude", nargs="+", help="mutant name globs not to count")
    parser.add_argument("--min-score", type=float, default=0.0, help="percent; exit 1 below")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"argument --jobs: {args.jobs} is not allowed: at least 1 mutant at once")
    if not 0 <= args.min_score <= 100:
        parser.error(
            f"argument --min-score: {args.min_score:g} is not allowed: a percent, 0 to 100"
        )
    missing = [test for test in args.tests or [] if not (ROOT / test).is_file()]
    if missing:
        parser.error(f"argument --tests: {missing} not found")
    return args


def main(argv: list[str] | None = None) -> int:
    """Mutate each module in turn, print its score and its survivors."""
    args = checked_arguments(argv)
    plan = []
    for module in args.modules:  # every module's file and tests, before any is mutated
        source = source_of(module)
        plan.append((module, source, args.tests or test_files(source)))
    scores = []
    for module, source, tests in plan:
        work = prepare(source, tests)
        print(f"== {module}: mutating {source} against {' '.join(tests)}")
        started = time.monotonic()
        mutmut(work, "run", "--max-children", str(args.jobs))
        print(f"   {time.monotonic() - started:.0f} s; log: {work / 'mutmut.log'}")
        skip = args.exclude or EXCLUDE.get(source, [])
        listed = statuses(work)
        found = {
            name: status
            for name, status in listed.items()
            if not any(fnmatch.fnmatch(name, pattern) for pattern in skip)
        }
        survivors = sorted(name for name, status in found.items() if status not in CAUGHT)
        for name in survivors:
            print(mutmut(work, "show", name).rstrip())
        caught = len(found) - len(survivors)
        if found:
            score = 100 * caught / len(found)
            shown = f"{score:5.1f}%  survivors: {len(survivors)}"
        else:  # no score at all, never a perfect one
            score, shown = None, f"no score: {nothing_to_score(listed, work)}"
        scores.append((module, score, f"  {module:<16} {caught:>4} / {len(found):<4} {shown}"))
    print("\nmutation score (killed / total), fast unit tests only:")
    print("\n".join(line for _, _, line in scores))
    unscored = [module for module, score, _ in scores if score is None]
    if unscored:
        print(f"error: no mutant to score for {', '.join(unscored)}", file=sys.stderr)
        return 1
    return 1 if any(score < args.min_score for _, score, _ in scores) else 0


def nothing_to_score(listed: dict[str, str], work: Path) -> str:
    """Why a module has no mutant to count: `mutmut results` lists none that RESULT_LINE
    reads, or --exclude (or EXCLUDE) drops all it lists."""
    if listed:
        return f"the exclusions drop all {len(listed)} mutants mutmut lists"
    return f"`mutmut results` lists no mutant this script reads (see {work / 'mutmut.log'})"


if __name__ == "__main__":
    sys.exit(main())
