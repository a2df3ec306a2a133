"""The runner refuses bad ranges, combinations and grid files in one line, exit status 2,
before any kernel starts (in-process: no notebook runs here)."""

import subprocess
import sys
from pathlib import Path

import pytest

import bce_suite.engine as engine
import bce_suite.notebooks as notebooks
from bce_suite import cli
from bce_suite.cli import main


def refused(capsys, *argv: str) -> str:
    """Run the CLI; assert it refused with status 2 and one line; return that line."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err.strip()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "04", "-p", "seed", "-5"],
            "04_pos_weight: parameter seed=-5 is not allowed: "
            "expected an integer >= 0 and <= 4294967295",
        ),
        (
            ["run", "04", "-p", "pos_weight", "0"],
            "04_pos_weight: parameter pos_weight=0.0 is not allowed: "
            "expected a number > 0 and <= 10000",
        ),
        (
            ["run", "01", "-p", "seed", "4294967296"],
            "parameter seed=4294967296 is not allowed: expected an integer >= 0 and <= 4294967295",
        ),
        (
            ["run", "04", "-p", "n_samples", "100", "-p", "positive_fraction", "0.05"],
            "parameters n_samples=100, positive_fraction=0.05 are not allowed together: "
            "the data would hold fewer than 10 positives",
        ),
        (
            ["run", "-p", "seed", "-1"],  # every notebook: the first one refuses
            "01_bce_loss: parameter seed=-1 is not allowed",
        ),
        (
            ["sweep", "05", "-p", "log_every", "5", "500", "-p", "n_samples", "640"],
            "parameters log_every=500, n_samples=640, batch_size=64, epochs=3 are not allowed "
            "together: log_every must not exceed the number of mini-batches",
        ),
        (
            ["run", "04", "-p", "pos_wieght", "3"],
            "04_pos_weight has no parameter 'pos_wieght'; declared: seed, device",
        ),
        (
            ["run", "04", "-p", "steps", "many"],
            "parameter steps: 'many' is not int like its default 500",
        ),
        (
            ["sweep", "04", "-p", "pos_weight", "1", "heavy"],
            "parameter pos_weight: 'heavy' is not float",
        ),
        (  # 2 and 2.0 are the same float: one run, one output, asked for twice
            ["sweep", "04", "-p", "pos_weight", "2", "2.0", "-p", "seed", "1"],
            "two runs would have the same name '04_pos_weight__pos_weight=2.0__seed=1': "
            "{'pos_weight': 2.0, 'seed': 1} and {'pos_weight': 2.0, 'seed': 1}",
        ),
    ],
)
def test_range_and_combination_refusals(tmp_path, capsys, args, message):
    line = refused(capsys, *args, "--out", str(tmp_path / "out"))
    assert message in line
    assert not (tmp_path / "out").exists(), "refused before any run: nothing written"


GRIDS = {
    "syntax": ("parameters:\n  pos_weight: [1, 2\n  lr: 0.1\n", ":3: YAML syntax error: expected"),
    "unknown": ("parameters:\n  pos_wieght: [1, 2]\n", ": 04_pos_weight has no parameter"),
    "empty": ("parameters:\n  pos_weight: []\n", ": no values given for pos_weight"),
    "type": ("parameters:\n  pos_weight: [1, heavy]\n", ": parameter pos_weight: 'heavy' is"),
    "range": ("parameters:\n  pos_weight: [1, -2]\n", ": 04_pos_weight: parameter pos_weight="),
    "fixed": ("parameters:\n  pos_weight: [1]\nfixed:\n  steps: 0\n", "parameter steps=0 is"),
    "list": ("- pos_weight\n", ": a grid is a mapping with the keys `parameters:`"),
    "no_parameters": ("fixed:\n  steps: 10\n", ": needs a `parameters:` mapping"),
}


@pytest.mark.parametrize("kind", list(GRIDS))
def test_malformed_grid_is_one_line_naming_the_file(tmp_path, capsys, kind):
    text, message = GRIDS[kind]
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text)
    line = refused(capsys, "sweep", "04", "--grid", str(path), "--out", str(tmp_path / "out"))
    assert line.startswith(f"error: {path}")
    assert message in line
    assert not (tmp_path / "out").exists()


def test_missing_grid_file(tmp_path, capsys):
    line = refused(capsys, "sweep", "04", "--grid", str(tmp_path / "nope.yaml"))
    missing = tmp_path / "nope.yaml"
    assert line == f"error: {missing}: cannot read the grid file (No such file or directory)"


def test_the_example_grids_pass_the_checks(tmp_path, monkeypatch):
    """The grids shipped in grids/ are accepted: the check, not the runs."""
    seen = []
    monkeypatch.setattr(engine, "run_jobs", lambda jobs, *a, **k: seen.extend(jobs) or [])
    monkeypatch.setattr(cli, "write_sweep_report", lambda *a: None)
    grids = Path(__file__).resolve().parents[2] / "grids"
    for notebook, grid in (("04", "04_pos_weight.yaml"), ("05", "05_lr_batch_size.yaml")):
        assert main(["sweep", notebook, "--grid", str(grids / grid), "--out", str(tmp_path)]) == 0
    assert len(seen) == 7 + 6


def test_an_error_after_the_runs_is_not_reported_as_bad_input(tmp_path, monkeypatch):
    def broken_report(out_dir, results):
        raise ValueError("disk full while writing the report")

    monkeypatch.setattr(engine, "run_jobs", lambda jobs, *a, **k: [])
    monkeypatch.setattr(cli, "write_run_report", broken_report)
    with pytest.raises(ValueError, match="disk full"):  # a traceback, not "error: ..." and 2
        main(["run", "02", "--out", str(tmp_path)])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--jobs", "0"], "--jobs must be at least 1, got 0"),
        (["--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"], "--jobs sets the local cluster"),
        (["--notebooks", "tests"], "--notebooks tests: no notebooks ([0-9][0-9]_*.ipynb) there"),
    ],
)
def test_option_refusals(tmp_path, capsys, args, message):
    line = refused(capsys, "run", "02", *args, "--out", str(tmp_path / "out"))
    assert message in line and not (tmp_path / "out").exists()


def test_refusals_start_no_cluster(tmp_path, capsys, monkeypatch):
    """Exit status 2 only before any run: the engine is never reached."""
    monkeypatch.setattr(engine, "run_jobs", lambda *a, **k: pytest.fail("a run started"))
    monkeypatch.setattr(notebooks, "CHECKOUT", tmp_path)  # as installed from a wheel
    monkeypatch.chdir(tmp_path)
    line = refused(capsys, "sweep", "04", "-p", "pos_weight", "1", "2")
    assert line.startswith("error: no notebooks ([0-9][0-9]_*.ipynb) found; looked in ")


def test_a_refusal_takes_well_under_a_second_without_torch_or_the_iri_parsers(tmp_path):
    """Checking parameters needs neither torch (1.7 s to import) nor the IRI grammars that
    jsonschema builds for nbformat (1 s): a refused command answers at once."""
    probe = (
        "import sys\n"
        "from bce_suite.cli import main\n"
        f"assert main(['run', '04', '-p', 'seed', '-5', '--out', {str(tmp_path / 'o')!r}]) == 2\n"
        "print(sorted(m for m in ('torch', 'rfc3987_syntax', 'nbformat') if sys.modules.get(m)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[0] == "['nbformat']"
    assert "parameter seed=-5 is not allowed" in out.stderr
