"""The student edition: written by its command, solutions gone, and it runs to the end.

Each notebook with exercises is executed through papermill at the test parameter set (the
runner's --quick), so the cost is that of one quick run per notebook.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import nbformat
import pytest

from bce_helpers.exercises import NOT_ATTEMPTED
from bce_suite.execute import execute
from bce_suite.parameters import QUICK_PARAMS
from tests.checkout import REPO_ROOT, all_notebooks

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
WITH_EXERCISES = [p for p in all_notebooks() if BEGIN in p.read_text()]


TOOL = REPO_ROOT / "tools" / "student_edition.py"
REGION = re.compile(rf"{BEGIN}\n(.*?)\n[ \t]*{END}", re.DOTALL)
# Smaller than the runner's --quick: this test is about the exercises, not the lessons.
SMALL = {
    "01_bce_loss": {"n_points": 3},
    "03_bce_with_logits": {"z_max": 20.0, "n_points": 3},
    "04_pos_weight": {"n_samples": 100, "steps": 2},
    "05_mlp_training": {"n_samples": 640, "epochs": 1},
    "06_circles": {"n_samples": 100, "epochs": 1},
    "07_multi_label": {"n_images": 100, "epochs": 1},
    "08_thresholds_calibration": {"n_blobs": 500, "steps": 10},
}


def solution_lines(nb: nbformat.NotebookNode) -> list[str]:
    """The lines between the markers of every solution region, stripped, comments left out,
    less those the lesson itself shows outside any solution."""
    sources = [c.source for c in nb.cells]
    outside = "\n".join(REGION.sub("", source) for source in sources)
    lines = []
    for region in REGION.findall("\n".join(sources)):
        lines += [s.strip() for s in region.splitlines() if s.strip()[:1] not in ("", "#")]
    return [line for line in lines if line not in outside]


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    """The student edition, written by the README's command into a temporary folder."""
    out = tmp_path_factory.mktemp("student")
    command = [sys.executable, str(TOOL), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return out, done.stdout


def test_the_command_writes_every_notebook_and_counts_its_solutions(edition):
    out, printed = edition
    for path in all_notebooks():
        n = sum(BEGIN in c.source for c in nbformat.read(path, as_version=4).cells)
        assert (out / path.name).exists()
        assert f"{path.name}: {n} solution{'s' * (n != 1)} taken out" in printed
    assert len(WITH_EXERCISES) >= 5


def test_the_command_refuses_to_overwrite_the_notebooks(capsys):
    spec = importlib.util.spec_from_file_location("student_edition", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(["--out", str(REPO_ROOT / "notebooks")]) == 2
    assert "is the notebooks' own folder" in capsys.readouterr().err


@pytest.mark.notebook
@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.stem)
def test_the_student_edition_runs_to_the_end_not_attempted(edition, tmp_path, path):
    out, _ = edition
    committed = nbformat.read(path, as_version=4)
    student_path = out / path.name
    student = nbformat.read(student_path, as_version=4)
    student_text = "\n".join(c.source for c in student.cells)
    answers = solution_lines(committed)
    assert answers, "the committed notebook has solutions"
    assert BEGIN not in student_text and END not in student_text
    assert [line for line in answers if line in student_text] == [], "solution text left"
    for cell in student.cells:
        if "# YOUR CODE HERE" in cell.source:
            assert cell.outputs == [] and "source_hidden" not in cell.metadata.get("jupyter", {})

    executed = tmp_path / path.name
    params = {**SMALL.get(path.stem, QUICK_PARAMS.get(path.stem, {})), "device": "cpu"}
    execute(student_path, executed, params, cwd=tmp_path)
    cells = nbformat.read(executed, as_version=4).cells
    checks = [c for c in cells if c.cell_type == "code" and re.search(r"^check\(", c.source, re.M)]
    assert len(checks) == sum(BEGIN in c.source for c in committed.cells) >= 2
    for cell in checks:
        shown = "".join(o.get("text", "") for o in cell.outputs)
        assert NOT_ATTEMPTED in shown and "right." not in shown, shown
    assert all(c.execution_count for c in cells if c.cell_type == "code"), "ran to the end"
