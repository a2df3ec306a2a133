"""One notebook through papermill (bce_suite.execute): the executed notebook written
atomically, with the run's noise stripped, a failing one kept with its error."""

import json
from pathlib import Path

import nbformat
import pytest
from papermill.exceptions import PapermillExecutionError

from bce_suite.execute import error_line, execute, strip_run_metadata

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks"


def test_strip_run_metadata_removes_timings_and_joins_printed_pieces():
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


def test_error_line_is_the_notebooks_own_exception_on_one_line():
    in_a_cell = PapermillExecutionError(3, 4, "raise ValueError", "ValueError", "boom\nmore", [])
    assert error_line(in_a_cell) == "ValueError: boom"
    assert error_line(RuntimeError("kernel died\nthe traceback")) == "RuntimeError: kernel died"
    assert error_line(KeyError("a")) == "KeyError: 'a'"
    assert error_line(TimeoutError()) == "TimeoutError: "


@pytest.mark.notebook
def test_execute_writes_the_executed_notebook_with_its_parameters(tmp_path):
    output, results = tmp_path / "out" / "sq.ipynb", tmp_path / "sq.json"
    execute(FIXTURES / "01_square.ipynb", output, {"x": 4, "results_path": str(results)})
    nb = nbformat.read(output, as_version=4)
    printed = [o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert "square=16\n" in printed
    assert "papermill" not in nb.metadata, "the run's noise is stripped"
    assert json.loads(results.read_text())["square"] == 16
    assert sorted(p.name for p in output.parent.iterdir()) == ["sq.ipynb"], "no temporary file"


@pytest.mark.notebook
def test_a_failing_notebook_raises_and_keeps_the_executed_notebook(tmp_path):
    output = tmp_path / "fails.ipynb"
    with pytest.raises(PapermillExecutionError) as info:
        execute(FIXTURES / "02_fails.ipynb", output, {"message": "bad x"})
    assert (info.value.ename, info.value.evalue) == ("ValueError", "bad x")
    outputs = nbformat.read(output, as_version=4).cells[-1].outputs
    assert [(o.output_type, o.ename, o.evalue) for o in outputs] == [
        ("error", "ValueError", "bad x")
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fails.ipynb"]
