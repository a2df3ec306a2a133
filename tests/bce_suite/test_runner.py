"""The runner's pieces in-process, on the small fixture notebooks in tests/fixtures (no
cluster here): discovery, parameters, resume records, reports, the report page."""

import json
import os
from pathlib import Path

import nbformat
import pytest

from bce_suite import cli, notebooks, page, reports, resume
from bce_suite.execute import Outcome, run_task, strip_run_metadata
from bce_suite.parameters import ParameterError, check_parameters, effective_parameters
from bce_suite.runs import Job, RunResult, headline_numbers

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks"
SQUARE = FIXTURES / "01_square.ipynb"
REPO = Path(__file__).resolve().parents[2]


def test_find_notebook_by_number_stem_or_file():
    folder = REPO / "notebooks"
    assert notebooks.find_notebook("04", folder).name == "04_pos_weight.ipynb"
    assert notebooks.find_notebook("04_pos_weight", folder).name == "04_pos_weight.ipynb"
    assert notebooks.find_notebook("04_pos_weight.ipynb", folder).name == "04_pos_weight.ipynb"
    with pytest.raises(ValueError, match="notebook '99' not found; known notebooks: 01_bce_loss"):
        notebooks.find_notebook("99", folder)


def test_notebooks_come_from_the_option_the_working_directory_or_the_checkout(tmp_path):
    (tmp_path / "notebooks").mkdir()
    assert notebooks.notebook_dir(FIXTURES, cwd=tmp_path) == FIXTURES
    assert notebooks.notebook_dir(None, cwd=FIXTURES) == FIXTURES  # the folder itself
    assert notebooks.notebook_dir(None, cwd=FIXTURES.parent) == FIXTURES  # ./notebooks
    assert notebooks.notebook_dir(None, cwd=tmp_path) == REPO / "notebooks"  # the checkout
    with pytest.raises(ParameterError, match=r"--notebooks .*: no notebooks \(\[0-9\]"):
        notebooks.notebook_dir(tmp_path)


def test_installed_as_a_wheel_it_says_where_it_looked(tmp_path, monkeypatch, capsys):
    """No checkout beside the package (a wheel in site-packages), no notebooks here."""
    monkeypatch.setattr(notebooks, "CHECKOUT", tmp_path / "site-packages")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no notebooks ([0-9][0-9]_*.ipynb) found; looked in ")
    for place in (tmp_path / "notebooks", tmp_path, tmp_path / "site-packages" / "notebooks"):
        assert str(place) in err
    assert "give --notebooks DIR" in err and not (tmp_path / "out").exists()
    assert cli.main(["list", "--notebooks", str(FIXTURES)]) == 0
    assert "01_square: a square" in capsys.readouterr().out


def test_fixture_parameters_are_typed_and_filled_from_the_defaults():
    assert check_parameters(SQUARE, {"x": "4", "seconds": "1"}) == {"x": 4, "seconds": 1.0}
    assert effective_parameters(SQUARE, {"x": 4}) == {
        "x": 4,
        "seconds": 0.0,
        "figure": False,
        "pid_path": None,
        "seed": 0,
    }
    with pytest.raises(ParameterError, match="has no parameter 'results_path'; declared: x,"):
        check_parameters(SQUARE, {"results_path": "elsewhere.json"})  # the runner's to set
    none = FIXTURES / "03_no_parameters.ipynb"
    with pytest.raises(ParameterError, match="declared: none \\(it has no parameters cell\\)"):
        check_parameters(none, {"x": "1"})


def test_strip_run_metadata():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    nb.metadata["papermill"] = {"input_path": "/abs/path", "duration": 1.0}
    nb.cells[0].metadata["papermill"] = {"start_time": "now"}
    nb.cells[0].metadata["execution"] = {"iopub.status.busy": "now"}
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="a: 1"),
        nbformat.v4.new_output("stream", name="stdout", text="\n"),
        nbformat.v4.new_output("stream", name="stderr", text="warn\n"),
        nbformat.v4.new_output("stream", name="stdout", text="b\n"),
    ]
    strip_run_metadata(nb)
    assert "papermill" not in nb.metadata
    assert dict(nb.cells[0].metadata) == {"tags": ["parameters"]}
    outputs = [(o.name, "".join(o.text)) for o in nb.cells[0].outputs]
    assert outputs == [("stdout", "a: 1\n"), ("stderr", "warn\n"), ("stdout", "b\n")]


def test_headline_numbers_and_table():
    numbers = headline_numbers(
        {
            "notebook": "x",
            "params": {"seed": 1},
            "device": "cpu",
            "loss": 0.20141,
            "n": 3,
            "ok": True,
        }
    )
    assert numbers == {"loss": 0.20141, "n": 3}
    table = reports.format_table(
        [
            RunResult("01_a", "ok", 1.25, numbers),
            RunResult("02_b", "failed", 0.5, error="ValueError: x"),
            RunResult("03_c", "ok", 2.0, {"n": 1}, lost_workers=["tcp://10.0.0.2:4001"]),
        ]
    )
    lines = table.splitlines()
    assert lines[0].split() == ["notebook", "status", "seconds", "headline", "numbers"]
    assert lines[2].split() == ["01_a", "ok", "1.2", "loss=0.2014,", "n=3"]
    assert lines[3].split()[:3] == ["02_b", "failed", "0.5"] and "ValueError: x" in lines[3]
    assert lines[4].endswith("n=1 [retried: worker tcp://10.0.0.2:4001 died before returning it]")


def job(x: int, **more) -> Job:
    params = {"x": x, **more}
    return Job(SQUARE, params, f"sq{x}", effective=effective_parameters(SQUARE, params))


def outcome(square: int, status: str = "ok") -> Outcome:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    results = json.dumps({"notebook": "01_square", "params": {}, "square": square})
    return Outcome(status, 1.5, nbformat.writes(nb), results if status == "ok" else None)


def test_resume_counts_a_run_complete_only_for_the_parameters_it_recorded(tmp_path):
    saved = resume.save(tmp_path, job(2), outcome(4))
    assert (saved.status, saved.numbers) == ("ok", {"square": 4})
    record = nbformat.read(tmp_path / "sq2.ipynb", as_version=4).metadata[resume.RECORD_KEY]
    assert record["parameters"]["x"] == 2 and record["parameters"]["seed"] == 0
    again = resume.completed(tmp_path, job(2))
    assert (again.status, again.numbers) == ("skipped", {"square": 4})
    assert resume.completed(tmp_path, job(2, seed=0)) is not None, "the default, given"
    other = job(2, seed=9)
    assert resume.completed(tmp_path, other) is None, "same name, other parameters: runs"
    assert resume.replaced(tmp_path, other) == (
        f"sq2 in {tmp_path} ran with seed=0: running it again with seed=9"
    )
    resume.save(tmp_path, job(3), outcome(0, "failed"))
    assert resume.completed(tmp_path, job(3)) is None, "a failed run runs again"
    assert not (tmp_path / "sq3.json").exists()
    (tmp_path / "sq2.json").unlink()
    assert resume.completed(tmp_path, job(2)) is None, "its results file is missing"


def test_a_report_page_that_cannot_render_warns_and_writes_the_rest(tmp_path, monkeypatch, capsys):
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "a.ipynb")
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "b.ipynb")

    def broken(executed, target):
        if executed.stem == "a":
            raise FileNotFoundError("template 'lab' not found")
        target.write_text("<html></html>")

    monkeypatch.setattr(reports, "to_html", broken)
    results = [
        RunResult("a", "ok", 1.0, {"x": 1.0}, run="a"),
        RunResult("b", "ok", 2.0, run="b"),
    ]
    reports.write_run_report(tmp_path, results)
    assert "warning: no HTML page for a: FileNotFoundError: template 'lab' not found" in (
        capsys.readouterr().err
    )
    index = (tmp_path / "index.html").read_text()
    assert "<a href='b.html'>b</a>" in index and "<td>a</td>" in index
    assert (tmp_path / "summary.md").read_text().count("| ok |") == 2
    assert reports.print_report(results, tmp_path) == 0, "the runs succeeded: exit status 0"


def test_the_page_shows_parameters_numbers_and_figure_thumbnails(tmp_path):
    """A real execution of the fixture with a figure, through the task function."""
    result = resume.save(
        tmp_path,
        job(5, figure=True),
        run_task(SQUARE.read_text(), "sq5", {"x": 5, "figure": True}, "t"),
    )
    assert result.numbers == {"square": 25, "half": 12.5}
    page.write_index(
        tmp_path, [result, RunResult("02_fails", "failed", 0.1, error="ValueError: boom", run="f")]
    )
    index = (tmp_path / "index.html").read_text()
    assert "x=5, figure=True" in index and "square = 25" in index and "half = 12.5" in index
    assert "<td class='failed'>failed</td>" in index and "ValueError: boom" in index
    (figure,) = (tmp_path / page.FIGURES).glob("sq5-*.png")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"src='{page.FIGURES}/{figure.name}'" in index
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")], "no temporary files"


def test_the_sweep_figure_has_a_panel_column_per_parameter_that_varies(tmp_path):
    import matplotlib.image

    results = [  # x swept over 3 values; seed and steps given one value each
        RunResult("01_square", "ok", 0.1, {"square": x * x, "half": x * x / 2}, run=f"r{x}",
                  params={"x": x, "seed": 0, "steps": 5})
        for x in (1, 2, 3)
    ]  # fmt: skip
    reports.plot_sweep(tmp_path / "one.png", ["x", "seed", "steps"], ["half", "square"], results)
    results[0].params["seed"] = 1  # now seed varies too
    reports.plot_sweep(tmp_path / "two.png", ["x", "seed", "steps"], ["half", "square"], results)
    one, two = (matplotlib.image.imread(tmp_path / f"{n}.png") for n in ("one", "two"))
    # panels of 4.5 x 3 inches at 80 dpi: 2 rows (the numbers) by 1, then 2, columns
    assert one.shape[:2] == (2 * 240, 1 * 360) and two.shape[:2] == (2 * 240, 2 * 360)
