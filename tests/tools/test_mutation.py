"""tools/mutation.py without mutmut's runs: which file a module name stands for and which
tests check it, the work copy and its [tool.mutmut] section, the parsing of `mutmut
results`, the score per module and the --min-score verdict, on small synthetic trees and
mutmut outputs whose figures are worked out by hand."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.checkout import REPO_ROOT
from tests.test_layout import PACKAGES, mirrored_test_file

spec = importlib.util.spec_from_file_location("mutation", REPO_ROOT / "tools" / "mutation.py")
mutation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mutation)

OLD_PYPROJECT = """\
[project]
name = "demo"

[tool.mutmut]
paths_to_mutate = ["old/"]

[tool.ruff]
line-length = 100
"""


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout in miniature: two packages, their tests, the data folders, a pyproject
    with a stale [tool.mutmut] section; tools/mutation.py pointed at it."""
    for path, text in {
        "alpha/__init__.py": "",
        "alpha/mod.py": "def f():\n    return 1\n",
        "alpha/__pycache__/mod.cpython-312.pyc": "compiled",
        "alpha/artifacts/big.bin": "generated",
        "beta/__init__.py": "",
        "beta/tool.py": "def g():\n    return 2\n",
        "tests/__init__.py": "",
        "tests/alpha/test_mod.py": "",
        "tests/beta/test_tool.py": "",
        "tests/beta/test_cli.py": "",
        "notebooks/01_demo.ipynb": "{}",
        "grids/demo.yaml": "parameters: {}\n",
        "pyproject.toml": OLD_PYPROJECT,
    }.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    monkeypatch.setattr(mutation, "ROOT", tmp_path)
    monkeypatch.setattr(mutation, "WORK", tmp_path / "build" / "mutation")
    return tmp_path


# --- which file, which tests ----------------------------------------------------------


def test_a_module_is_a_name_or_path_in_bce_helpers_or_a_file(tree: Path):
    for path in ("bce_helpers/params.py", "bce_helpers/fast/training.py", "bce_suite/resume.py"):
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text("")
    assert mutation.source_of("params") == "bce_helpers/params.py"
    assert mutation.source_of("fast/training") == "bce_helpers/fast/training.py"
    assert mutation.source_of("/fast/training/") == "bce_helpers/fast/training.py"
    assert mutation.source_of("bce_suite/resume.py") == "bce_suite/resume.py"


def test_a_module_that_does_not_exist_is_refused_by_its_path(tree: Path):
    with pytest.raises(SystemExit, match=r"^bce_helpers/nope\.py does not exist$"):
        mutation.source_of("nope")
    with pytest.raises(SystemExit, match=r"^alpha/gone\.py does not exist$"):
        mutation.source_of("alpha/gone.py")


@pytest.mark.parametrize(
    "source",
    [
        "bce_helpers/losses.py",
        "bce_helpers/fast/training.py",
        "bce_helpers/exercises/grading.py",
        "bce_suite/resume.py",
    ],
)
def test_the_default_tests_are_the_mirrored_file_of_the_layout_rule(source: str):
    # the reference: tests/test_layout.py's own mapping of a module to its test file
    expected = mirrored_test_file(REPO_ROOT / source, REPO_ROOT).relative_to(REPO_ROOT)
    assert mutation.mirrored_test(source) == expected.as_posix()


def test_the_mapping_agrees_with_the_layout_rule_on_every_module_of_the_packages():
    sources = [
        path.relative_to(REPO_ROOT).as_posix()
        for package in PACKAGES
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
    ]
    assert "bce_helpers/exercises/__init__.py" in sources  # the case the rule singles out
    rule = {
        source: mirrored_test_file(REPO_ROOT / source, REPO_ROOT).relative_to(REPO_ROOT).as_posix()
        for source in sources
    }
    assert {source: mutation.mirrored_test(source) for source in sources} == rule


def test_a_packages_init_is_mutated_against_its_test_init():
    # the checkout's own: `python tools/mutation.py exercises/__init__`
    source = mutation.source_of("exercises/__init__")
    assert source == "bce_helpers/exercises/__init__.py"
    assert mutation.test_files(source) == ["tests/bce_helpers/exercises/test_init.py"]


def test_the_tests_run_are_the_mirrored_file_or_the_listed_ones(tree, monkeypatch):
    assert mutation.test_files("alpha/mod.py") == ["tests/alpha/test_mod.py"]
    listed = ["tests/beta/test_tool.py", "tests/beta/test_cli.py"]
    monkeypatch.setattr(mutation, "TESTS", {"beta/tool.py": listed})
    assert mutation.test_files("beta/tool.py") == listed
    assert mutation.test_files("alpha/mod.py") == ["tests/alpha/test_mod.py"]


def test_a_module_without_its_tests_is_refused_naming_the_missing_files(tree, monkeypatch):
    (tree / "tests/alpha/test_mod.py").unlink()
    message = (
        "no unit tests for 'alpha/mod.py': ['tests/alpha/test_mod.py'] not found; pass --tests"
    )
    with pytest.raises(SystemExit, match=f"^{re.escape(message)}$"):
        mutation.test_files("alpha/mod.py")
    listed = ["tests/beta/test_tool.py", "tests/beta/test_gone.py"]
    monkeypatch.setattr(mutation, "TESTS", {"beta/tool.py": listed})
    with pytest.raises(SystemExit, match=re.escape("['tests/beta/test_gone.py'] not found")):
        mutation.test_files("beta/tool.py")


# --- the work copy ---------------------------------------------------------------------


def test_packages_are_the_folders_with_an_init_but_tests(tree: Path):
    assert mutation.packages() == ["alpha", "beta"]


def test_the_work_copy_holds_the_packages_and_a_mutmut_section_for_one_module(tree: Path):
    stale = tree / "build/mutation/alpha.mod/stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("from an earlier run")
    work = mutation.prepare("alpha/mod.py", ["tests/alpha/test_mod.py"])
    assert work == tree / "build/mutation/alpha.mod"
    assert not stale.exists()
    copied = sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file())
    assert copied == [
        "alpha/__init__.py",
        "alpha/mod.py",
        "beta/__init__.py",
        "beta/tool.py",
        "grids/demo.yaml",
        "notebooks/01_demo.ipynb",
        "pyproject.toml",
        "tests/__init__.py",
        "tests/alpha/test_mod.py",
        "tests/beta/test_cli.py",
        "tests/beta/test_tool.py",
    ]
    config = tomllib.loads((work / "pyproject.toml").read_text())
    assert config["project"] == {"name": "demo"}
    assert config["tool"]["ruff"] == {"line-length": 100}
    assert config["tool"]["mutmut"] == {
        "source_paths": ["alpha"],
        "only_mutate": ["alpha/mod.py"],
        "also_copy": ["beta/", "notebooks/", "grids/"],
        "pytest_add_cli_args": [
            "-m",
            "not notebook and not browser and not fresh_clone",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        "pytest_add_cli_args_test_selection": ["tests/alpha/test_mod.py"],
        "process_isolation": "forkserver",
        "use_git_change_detection": False,
    }
    assert (tree / "pyproject.toml").read_text() == OLD_PYPROJECT  # the checkout untouched


def test_modules_of_different_folders_get_different_work_copies(tree: Path):
    (tree / "alpha/sub").mkdir()
    (tree / "alpha/sub/mod.py").write_text("")
    one = mutation.prepare("alpha/mod.py", ["tests/alpha/test_mod.py"])
    other = mutation.prepare("alpha/sub/mod.py", ["tests/alpha/test_mod.py"])
    assert (one.name, other.name) == ("alpha.mod", "alpha.sub.mod")
    assert (one / "pyproject.toml").is_file()  # the second did not remove the first


# --- mutmut's output ---------------------------------------------------------------------


def fake_python(tmp_path: Path, status: int) -> str:
    """A stand-in for `python -m mutmut ...`: prints its arguments, exits with `status`."""
    script = tmp_path / f"python{status}"
    script.write_text(f'#!/bin/sh\necho "mutmut says: $*"\nexit {status}\n')
    script.chmod(0o755)
    return str(script)


def test_mutmut_output_is_returned_and_kept_in_the_log(tmp_path, monkeypatch):
    monkeypatch.setattr(mutation, "sys", SimpleNamespace(executable=fake_python(tmp_path, 0)))
    assert mutation.mutmut(tmp_path, "results", "--all", "true") == (
        "mutmut says: -m mutmut results --all true\n"
    )
    mutation.mutmut(tmp_path, "show", "alpha.mod.x_f__mutmut_1")
    assert (tmp_path / "mutmut.log").read_text() == (
        "mutmut says: -m mutmut results --all true\n"
        "mutmut says: -m mutmut show alpha.mod.x_f__mutmut_1\n"
    )


def test_a_failed_mutmut_stops_with_its_command_status_and_log(tmp_path, monkeypatch):
    monkeypatch.setattr(mutation, "sys", SimpleNamespace(executable=fake_python(tmp_path, 4)))
    log = tmp_path / "mutmut.log"
    with pytest.raises(SystemExit) as stop:
        mutation.mutmut(tmp_path, "run", "--max-children", "2")
    assert stop.value.code == f"mutmut run --max-children 2 failed (exit 4); see {log}"
    assert log.read_text() == "mutmut says: -m mutmut run --max-children 2\n"


# What `mutmut results --all true` prints: four spaces, the mutant's name, its status; the
# statuses as mutmut 3 names them ("no tests" has a space). Lines that are not indented are
# not mutants.
RESULTS = """\
Running stats...
    alpha.mod.x_f__mutmut_1: killed
    alpha.mod.x_f__mutmut_2: killed
    alpha.mod.x_f__mutmut_3: timeout
    alpha.mod.x_f__mutmut_4: survived
    alpha.mod.x_g__mutmut_1: killed
    alpha.mod.x_g__mutmut_2: no tests
    alpha.mod.x_g__mutmut_3: suspicious
    alpha.mod.x_h__mutmut_1: killed
done: 8 mutants
"""


def test_results_are_read_as_each_mutants_status(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(mutation, "mutmut", lambda work, *args: calls.append(args) or RESULTS)
    assert mutation.statuses(tmp_path) == {
        "alpha.mod.x_f__mutmut_1": "killed",
        "alpha.mod.x_f__mutmut_2": "killed",
        "alpha.mod.x_f__mutmut_3": "timeout",
        "alpha.mod.x_f__mutmut_4": "survived",
        "alpha.mod.x_g__mutmut_1": "killed",
        "alpha.mod.x_g__mutmut_2": "no tests",
        "alpha.mod.x_g__mutmut_3": "suspicious",
        "alpha.mod.x_h__mutmut_1": "killed",
    }
    assert calls == [("results", "--all", "true")]  # killed ones are listed too


# --- the score and the verdict ------------------------------------------------------------


# What the runs fixture's mutmut prints as results, by work copy: alpha/mod.py's mutants are
# RESULTS, beta/tool.py's are three, all killed.
RESULTS_BY_COPY = {
    "alpha.mod": RESULTS,
    "beta.tool": "".join(f"    beta.tool.x_g__mutmut_{i}: killed\n" for i in (1, 2, 3)),
}


@pytest.fixture
def runs(tree: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """main() with mutmut replaced, its results those of RESULTS_BY_COPY; the calls made are
    recorded."""
    calls: list[tuple] = []

    def fake_mutmut(work: Path, *args: str) -> str:
        calls.append((work.name, *args))
        if args[0] == "results":
            return RESULTS_BY_COPY[work.name]
        if args[0] == "show":
            return f"# {args[1]}: survived\n--- a/mod.py\n+++ b/mod.py\n"
        return ""

    monkeypatch.setattr(mutation, "mutmut", fake_mutmut)
    return calls


def score_line(text: str, module: str) -> tuple[int, int, float, int]:
    found = re.search(
        rf"^  {re.escape(module)}\s+(\d+) / (\d+)\s+([\d.]+)%  survivors: (\d+)$", text, re.M
    )
    assert found, text
    return int(found[1]), int(found[2]), float(found[3]), int(found[4])


def test_the_score_is_killed_and_timed_out_over_all_and_survivors_are_shown(runs, capsys):
    assert mutation.main(["alpha/mod.py", "--jobs", "3"]) == 0
    out = capsys.readouterr().out
    # by hand: 8 mutants; caught: 4 killed + 1 timeout = 5; survivors: survived, no tests,
    # suspicious = 3; 5 / 8 = 62.5%
    assert score_line(out, "alpha/mod.py") == (5, 8, 62.5, 3)
    assert ("alpha.mod", "run", "--max-children", "3") in runs
    shown = [call[2] for call in runs if call[1] == "show"]
    assert shown == [
        "alpha.mod.x_f__mutmut_4",
        "alpha.mod.x_g__mutmut_2",
        "alpha.mod.x_g__mutmut_3",
    ]
    for name in shown:
        assert f"# {name}: survived" in out
    assert "== alpha/mod.py: mutating alpha/mod.py against tests/alpha/test_mod.py" in out


def test_excluded_mutants_are_not_counted(runs, capsys):
    assert mutation.main(["alpha/mod.py", "--exclude", "*x_g__*", "*x_h__*"]) == 0
    # by hand: x_f's four are left: 2 killed + 1 timeout = 3 caught of 4, 75.0%
    assert score_line(capsys.readouterr().out, "alpha/mod.py") == (3, 4, 75.0, 1)


@pytest.mark.parametrize(
    ("min_score", "status"),
    [(0.0, 0), (62.5, 0), (62.6, 1), (100.0, 1)],
)
def test_a_module_below_min_score_fails_the_run(runs, capsys, min_score, status):
    # alpha/mod.py scores 62.5% (above), beta/tool.py 3 / 3 = 100%
    argv = ["alpha/mod.py", "beta/tool.py", "--min-score", str(min_score)]
    assert mutation.main(argv) == status
    out = capsys.readouterr().out
    assert score_line(out, "alpha/mod.py") == (5, 8, 62.5, 3)
    assert score_line(out, "beta/tool.py") == (3, 3, 100.0, 0)


@pytest.mark.parametrize(
    "results",
    [
        "\n".join(line.strip() for line in RESULTS.splitlines()),  # lines without their indent
        "",
    ],
)
def test_a_module_without_results_is_an_error_not_a_full_score(
    tree, runs, capsys, monkeypatch, results
):
    monkeypatch.setitem(RESULTS_BY_COPY, "alpha.mod", results)
    assert mutation.main(["alpha/mod.py", "beta/tool.py"]) == 1  # though --min-score is 0
    out, err = capsys.readouterr()
    log = tree / "build/mutation/alpha.mod/mutmut.log"
    why = f"`mutmut results` lists no mutant this script reads (see {log})"
    assert re.search(rf"^  alpha/mod\.py\s+0 / 0\s+no score: {re.escape(why)}$", out, re.M), out
    assert score_line(out, "beta/tool.py") == (3, 3, 100.0, 0)  # the other is still scored
    assert err == "error: no mutant to score for alpha/mod.py\n"


def test_excluding_every_mutant_leaves_nothing_to_score(runs, capsys):
    assert mutation.main(["alpha/mod.py", "--exclude", "alpha.*"]) == 1
    out, err = capsys.readouterr()
    assert "no score: the exclusions drop all 8 mutants mutmut lists" in out
    assert err == "error: no mutant to score for alpha/mod.py\n"


def test_given_tests_replace_the_mirrored_file(runs, capsys):
    assert mutation.main(["alpha/mod.py", "--tests", "tests/beta/test_cli.py"]) == 0
    assert "mutating alpha/mod.py against tests/beta/test_cli.py" in capsys.readouterr().out


def test_bad_arguments_are_refused_before_anything_is_copied(tree, runs, capsys):
    with pytest.raises(SystemExit) as stop:
        mutation.main([])
    assert stop.value.code == 2
    assert "the following arguments are required: modules" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        mutation.main(["alpha/mod.py", "--jobs", "two"])
    assert stop.value.code == 2
    assert "argument --jobs: invalid int value: 'two'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match=r"^bce_helpers/nope\.py does not exist$"):
        mutation.main(["nope"])
    assert runs == [] and not (tree / "build").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--jobs", "0"], "argument --jobs: 0 is not allowed: at least 1 mutant at once"),
        (["--jobs", "-3"], "argument --jobs: -3 is not allowed: at least 1 mutant at once"),
        (
            ["--min-score", "-0.5"],
            "argument --min-score: -0.5 is not allowed: a percent, 0 to 100",
        ),
        (
            ["--min-score", "100.5"],
            "argument --min-score: 100.5 is not allowed: a percent, 0 to 100",
        ),
        (["--min-score", "nan"], "argument --min-score: nan is not allowed: a percent, 0 to 100"),
        (
            ["--tests", "tests/beta/test_cli.py", "tests/beta/test_gone.py"],
            "argument --tests: ['tests/beta/test_gone.py'] not found",
        ),
    ],
)
def test_option_values_out_of_range_stop_it_with_status_2_before_any_work(
    tree, runs, capsys, argv, message
):
    with pytest.raises(SystemExit) as stop:
        mutation.main(["alpha/mod.py", *argv])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ") and err.endswith(f"error: {message}\n")
    assert runs == [] and not (tree / "build").exists()


def test_the_edges_of_the_ranges_are_allowed(runs, capsys):
    assert mutation.main(["beta/tool.py", "--jobs", "1", "--min-score", "100"]) == 0
    assert ("beta.tool", "run", "--max-children", "1") in runs
    assert mutation.main(["beta/tool.py", "--min-score", "0"]) == 0


@pytest.mark.parametrize(
    ("modules", "remove", "message"),
    [
        (["alpha/mod.py", "beta/tool.py", "nope"], [], "bce_helpers/nope.py does not exist"),
        (
            ["alpha/mod.py", "beta/tool.py"],
            ["tests/beta/test_tool.py"],
            "no unit tests for 'beta/tool.py': ['tests/beta/test_tool.py'] not found; pass --tests",
        ),
    ],
)
def test_every_module_and_its_tests_are_checked_before_the_first_is_mutated(
    tree, runs, modules, remove, message
):
    # the bad one comes last: nothing may have run for the good ones before it
    for path in remove:
        (tree / path).unlink()
    with pytest.raises(SystemExit, match=f"^{re.escape(message)}$"):
        mutation.main(modules)
    assert runs == [] and not (tree / "build").exists()
