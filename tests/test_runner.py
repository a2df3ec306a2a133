"""The notebook runner behind `make run` and `make notebooks`."""

import nbformat
import pytest

from bce_helpers import runner
from bce_helpers.runner import (
    RunResult,
    find_notebook,
    format_table,
    headline_numbers,
    strip_run_metadata,
)


def test_find_notebook_by_number_stem_or_file():
    assert find_notebook("04").name == "04_pos_weight.ipynb"
    assert find_notebook("04_pos_weight").name == "04_pos_weight.ipynb"
    assert find_notebook("04_pos_weight.ipynb").name == "04_pos_weight.ipynb"
    with pytest.raises(ValueError, match="notebook '99' not found; known notebooks: 01_bce_loss"):
        find_notebook("99")


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
    table = format_table(
        [
            RunResult("01_a", "ok", 1.25, numbers),
            RunResult("02_b", "failed", 0.5, error="ValueError: x"),
        ]
    )
    lines = table.splitlines()
    assert lines[0].split() == ["notebook", "status", "seconds", "headline", "numbers"]
    assert lines[2].split() == ["01_a", "ok", "1.2", "loss=0.2014,", "n=3"]
    assert lines[3].split()[:3] == ["02_b", "failed", "0.5"] and "ValueError: x" in lines[3]


def test_a_report_page_that_cannot_render_warns_and_writes_the_rest(tmp_path, monkeypatch, capsys):
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "a.ipynb")
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "b.ipynb")

    def broken(executed, target):
        if executed.stem == "a":
            raise FileNotFoundError("template 'lab' not found")
        target.write_text("<html></html>")

    monkeypatch.setattr(runner, "to_html", broken)
    results = [
        RunResult("a", "ok", 1.0, {"x": 1.0}, run="a"),
        RunResult("b", "ok", 2.0, run="b"),
    ]
    runner.write_run_report(tmp_path, results)
    assert "warning: no HTML page for a: FileNotFoundError: template 'lab' not found" in (
        capsys.readouterr().err
    )
    index = (tmp_path / "index.html").read_text()
    assert '<a href="b.html">b</a>' in index and "<td>a</td>" in index
    assert (tmp_path / "summary.md").read_text().count("| ok |") == 2
    assert runner.report(results, tmp_path) == 0, "the runs succeeded: exit status 0"
