"""Exact values of an output folder's resume records (bce_suite.resume): which earlier run
counts as complete, what a recorded parameter mismatch reports, which stale files a killed
process left are removed. The files are built on disk directly: no notebook runs."""

import json
from pathlib import Path

import nbformat
import pytest

from bce_suite import resume
from bce_suite.parameters import effective_parameters
from bce_suite.runs import Job, Outcome, RunResult

SQUARE = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks" / "01_square.ipynb"


def executed(out_dir: Path, run: str, record: dict | None, text: str | None = None) -> Path:
    """An executed notebook file `run`.ipynb in out_dir carrying `record` (or none)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    if record is not None:
        nb.metadata[resume.RECORD_KEY] = record
    path = out_dir / f"{run}.ipynb"
    path.write_text(text if text is not None else nbformat.writes(nb))
    return path


def results_file(out_dir: Path, run: str, **numbers) -> Path:
    path = out_dir / f"{run}.json"
    path.write_text(json.dumps({"notebook": "01_square", "params": {"x": 2}, **numbers}))
    return path


def square_job(effective: dict, run: str = "sq2", writes_results: bool = True) -> Job:
    return Job(SQUARE, {"x": 2}, run, effective=effective, writes_results=writes_results)


# completed ----------------------------------------------------------------------------


def test_a_complete_run_is_skipped_with_its_name_parameters_and_numbers(tmp_path):
    executed(tmp_path, "sq2", {"notebook": "01_square", "parameters": {"x": 2}, "status": "ok"})
    results_file(tmp_path, "sq2", square=4, loss=0.5, device="cpu")
    got = resume.completed(tmp_path, square_job({"x": 2}))
    assert got == RunResult(
        "01_square", "skipped", 0.0, {"square": 4, "loss": 0.5}, run="sq2", params={"x": 2}
    )
    assert got.seconds == 0.0 and got.run == "sq2" and got.params == {"x": 2}


def test_no_executed_notebook_means_not_complete(tmp_path):
    results_file(tmp_path, "sq2", square=4)
    assert resume.completed(tmp_path, square_job({"x": 2})) is None


def test_a_failed_run_with_its_results_present_is_not_complete(tmp_path):
    executed(tmp_path, "sq2", {"parameters": {"x": 2}, "status": "failed"})
    results_file(tmp_path, "sq2", square=4)
    assert resume.completed(tmp_path, square_job({"x": 2})) is None


def test_parameters_recorded_in_another_key_order_are_the_same(tmp_path):
    # nbformat sorts keys when it writes; a notebook written by another tool need not.
    record = {"status": "ok", "parameters": {"x": 2, "seed": 0}}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    nb.metadata[resume.RECORD_KEY] = record
    text = json.dumps(nb)  # no sort_keys: the record keeps the order x, seed
    assert text.index('"x"') < text.index('"seed"')
    executed(tmp_path, "sq2", None, text=text)
    results_file(tmp_path, "sq2", square=4)
    got = resume.completed(tmp_path, square_job({"seed": 0, "x": 2}))
    assert got is not None and got.numbers == {"square": 4}


def test_a_record_without_parameters_is_complete_for_a_notebook_without_any(tmp_path):
    executed(tmp_path, "plain", {"status": "ok"})
    got = resume.completed(tmp_path, square_job({}, run="plain", writes_results=False))
    assert got == RunResult("01_square", "skipped", 0.0, {}, run="plain", params={"x": 2})
    assert resume.completed(tmp_path, square_job({"x": 2}, run="plain", writes_results=False)) is (
        None
    )


def test_a_notebook_that_writes_no_results_needs_no_results_file(tmp_path):
    executed(tmp_path, "sq2", {"parameters": {"x": 2}, "status": "ok"})
    got = resume.completed(tmp_path, square_job({"x": 2}, writes_results=False))
    assert got is not None and (got.status, got.numbers) == ("skipped", {})
    results_file(tmp_path, "sq2", square=4)  # a stray file it did not write: not read
    got = resume.completed(tmp_path, square_job({"x": 2}, writes_results=False))
    assert got.numbers == {}


# replaced -----------------------------------------------------------------------------


def test_nothing_replaced_without_a_record_or_with_the_same_parameters(tmp_path):
    assert resume.replaced(tmp_path, square_job({"x": 2})) is None
    executed(tmp_path, "sq2", {"parameters": {"x": 2, "seed": 0}, "status": "ok"})
    assert resume.replaced(tmp_path, square_job({"seed": 0, "x": 2})) is None
    executed(tmp_path, "sq2", {"parameters": {"x": 2}, "status": "failed"})
    assert resume.replaced(tmp_path, square_job({"x": 2})) is None, "status does not matter"


def test_a_record_without_parameters_replaced_by_none_is_not_reported(tmp_path):
    executed(tmp_path, "plain", {"status": "ok"})
    assert resume.replaced(tmp_path, square_job({}, run="plain")) is None


def test_a_record_without_parameters_reports_every_new_one_as_none_before(tmp_path):
    executed(tmp_path, "sq2", {"status": "ok"})
    assert resume.replaced(tmp_path, square_job({"x": 2})) == (
        f"sq2 in {tmp_path} ran with x=None: running it again with x=2"
    )


def test_several_differences_are_listed_comma_separated(tmp_path):
    old = {"x": 2, "seed": 0, "figure": False, "name": "a"}
    executed(tmp_path, "sq2", {"parameters": old, "status": "ok"})
    new = {"x": 3, "seed": 0, "figure": True, "name": "b"}
    assert resume.replaced(tmp_path, square_job(new)) == (
        # in the recorded order: nbformat writes the record with its keys sorted
        f"sq2 in {tmp_path} ran with figure=False, name='a', x=2: "
        "running it again with figure=True, name='b', x=3"
    )


# save ---------------------------------------------------------------------------------


def test_save_records_the_notebook_parameters_and_status(tmp_path):
    nb = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]))
    results = json.dumps({"notebook": "01_square", "params": {}, "square": 4})
    job = square_job({"x": 2, "seed": 0})
    resume.save(tmp_path, job, Outcome("ok", 1.5, nb, results))
    record = nbformat.read(tmp_path / "sq2.ipynb", as_version=4).metadata[resume.RECORD_KEY]
    assert dict(record) == {
        "notebook": "01_square",
        "parameters": {"x": 2, "seed": 0},
        "status": "ok",
    }


def test_a_failed_run_saves_its_error_and_no_numbers(tmp_path):
    nb = nbformat.writes(nbformat.v4.new_notebook())
    results_file(tmp_path, "sq2", square=4)  # from an earlier run: removed
    got = resume.save(
        tmp_path, square_job({"x": 2}), Outcome("failed", 2.5, nb, None, "ValueError: x < 0")
    )
    assert got == RunResult(
        "01_square", "failed", 2.5, {}, error="ValueError: x < 0", run="sq2", params={"x": 2}
    )
    assert got.numbers == {} and got.error == "ValueError: x < 0"
    assert not (tmp_path / "sq2.json").exists()


def test_save_writes_the_page_beside_the_notebook_and_none_without_one(tmp_path):
    nb = nbformat.writes(nbformat.v4.new_notebook())
    page = "<html><body>x = 2, square = 4</body></html>"
    resume.save(tmp_path, square_job({"x": 2}), Outcome("ok", 1.0, nb, None, page=page))
    assert (tmp_path / "sq2.html").read_text() == page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sq2.html", "sq2.ipynb"]
    empty = tmp_path / "none"
    empty.mkdir()
    resume.save(empty, square_job({"x": 2}), Outcome("ok", 1.0, None, None))
    assert list(empty.iterdir()) == []


# clean_stale --------------------------------------------------------------------------


def test_clean_stale_removes_temporary_files_and_keeps_complete_outputs(tmp_path):
    stale = [".sq2.json.k3j9.tmp", ".sq2.ipynb.ab12.tmp", ".sq2.ipynb", ".sq3.html.x.tmp"]
    kept = ["sq2.json", "sq2.ipynb", "sq2.html", "index.html", "notes.tmp", ".hidden.txt"]
    for name in stale + kept:
        (tmp_path / name).write_text("{}")
    resume.clean_stale(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


@pytest.mark.parametrize("name", [".sq2.json.k3j9.tmp", ".sq2.ipynb"])
def test_clean_stale_removes_each_kind_alone(tmp_path, name):
    (tmp_path / name).write_text("{}")
    (tmp_path / "sq2.ipynb").write_text("{}")
    resume.clean_stale(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["sq2.ipynb"]


def test_clean_stale_in_an_empty_folder_does_nothing(tmp_path):
    resume.clean_stale(tmp_path)
    assert list(tmp_path.iterdir()) == []


# a run saved, then resumed --------------------------------------------------------------


def fixture_job(x: int, **more) -> Job:
    params = {"x": x, **more}
    return Job(SQUARE, params, f"sq{x}", effective=effective_parameters(SQUARE, params))


def square_outcome(square: int, status: str = "ok") -> Outcome:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    results = json.dumps({"notebook": "01_square", "params": {}, "square": square})
    return Outcome(status, 1.5, nbformat.writes(nb), results if status == "ok" else None)


def test_resume_counts_a_run_complete_only_for_the_parameters_it_recorded(tmp_path):
    saved = resume.save(tmp_path, fixture_job(2), square_outcome(4))
    assert (saved.status, saved.numbers) == ("ok", {"square": 4})
    record = nbformat.read(tmp_path / "sq2.ipynb", as_version=4).metadata[resume.RECORD_KEY]
    assert record["parameters"]["x"] == 2 and record["parameters"]["seed"] == 0
    again = resume.completed(tmp_path, fixture_job(2))
    assert (again.status, again.numbers) == ("skipped", {"square": 4})
    assert resume.completed(tmp_path, fixture_job(2, seed=0)) is not None, "the default, given"
    other = fixture_job(2, seed=9)
    assert resume.completed(tmp_path, other) is None, "same name, other parameters: runs"
    assert resume.replaced(tmp_path, other) == (
        f"sq2 in {tmp_path} ran with seed=0: running it again with seed=9"
    )
    resume.save(tmp_path, fixture_job(3), square_outcome(0, "failed"))
    assert resume.completed(tmp_path, fixture_job(3)) is None, "a failed run runs again"
    assert not (tmp_path / "sq3.json").exists()
    (tmp_path / "sq2.json").unlink()
    assert resume.completed(tmp_path, fixture_job(2)) is None, "its results file is missing"
