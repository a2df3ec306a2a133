"""The shape every lesson shares, read from the committed notebooks: one lesson said first,
questions to check yourself at the end, nbval's markers as tags (never in a learner's code),
"seed" only as the random seed, math that renders as written."""

from __future__ import annotations

import re

import nbformat
import pytest

from bce_helpers.exercises import EXERCISES
from bce_suite.notebooks import CHECKOUT, all_notebooks
from tests.checkout import find_notebook

NOTEBOOKS = all_notebooks(CHECKOUT / "notebooks")
# Checked cells (nbval compares their outputs) each notebook had when the markers became
# tags: a rewrite keeps at least as many.
CHECKED_BEFORE = {
    "01_bce_loss": 16,
    "02_functional_bce": 10,
    "03_bce_with_logits": 12,
    "04_pos_weight": 11,
    "05_mlp_training": 9,
    "06_circles": 8,
    "09_bce_at_scale": 5,
}
# "seed" for a source guide, not the random seed: the phrasings the rewrite retired.
GUIDE_AS_SEED = re.compile(
    r"\bseeds?\s*\d{3}|\bseed\d{3}|\bseeds'|\bseed's\b|\bthe seeds\b|seed_order"
    r"|\bthe seed (says|said|did|does|wrote|writes|read|reads|printed|prints|uses|used|calls"
    r"|called|stops|stopped|split|splits|ran|runs|shows|showed|example|guide|text|code)\b",
    re.IGNORECASE,
)
# A super- or subscript of more than one character without braces: 10^-13 renders 10⁻13.
UNBRACED_SCRIPT = re.compile(r"[\^_](?!\{)(-?[A-Za-z0-9]{2,}|-[A-Za-z0-9])")
MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.DOTALL)


def cells(path):
    return nbformat.read(path, as_version=4).cells


def tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


def test_the_suite_has_its_notebooks():
    assert {p.stem for p in NOTEBOOKS} >= set(CHECKED_BEFORE)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_first_cell_says_the_one_lesson(path):
    first = cells(path)[0]
    assert first.cell_type == "markdown"
    assert first.source.startswith(f"# {path.stem[:2]} · "), first.source[:60]
    assert "you will be able to" in first.source.lower(), "the lesson, said first"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_it_ends_with_what_to_remember_and_questions(path):
    nb = cells(path)
    text = "\n".join(c.source for c in nb if c.cell_type == "markdown")
    assert "## What to remember" in text and "## Check yourself" in text
    questions = text.split("## Check yourself", 1)[1]
    assert questions.count("<details>") >= 2, "at least two questions, answers collapsed"
    assert questions.count("<details>") == questions.count("</details>")
    assert nb[-1].cell_type == "code" and "save_results(" in nb[-1].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_nbval_markers_are_tags_and_as_many_cells_are_checked(path):
    code = [c for c in cells(path) if c.cell_type == "code"]
    assert not [c.source for c in code if "NBVAL" in c.source]
    checked = sum("nbval-check-output" in tags(c) for c in code)
    assert checked >= CHECKED_BEFORE.get(path.stem, 3), f"{checked} checked cells"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_seed_means_the_random_seed_only(path):
    found = []
    for cell in cells(path):
        outputs = "".join(o.get("text", "") for o in cell.get("outputs", []))
        found += [m[0] for m in GUIDE_AS_SEED.finditer(cell.source + "\n" + outputs)]
    assert not found, found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_math_braces_every_long_script(path):
    found = []
    for cell in cells(path):
        if cell.cell_type != "markdown":
            continue
        source = re.sub(r"`[^`]*`", "", cell.source)  # code spans are not math
        for match in MATH.finditer(source):
            found += [m[0] for m in UNBRACED_SCRIPT.finditer(match[1] or match[2])]
    assert not found, found


@pytest.mark.parametrize(
    ("text", "flagged"),
    [("$10^-13$", True), ("$10^{-13}$", False), ("$2^23$", True), ("$x_i + e^x$", False),
     ("$p_{w}$", False), ("$$\\log(1 + t) = 2s$$", False), ("`x^ab` and $y$", False)],
)  # fmt: skip
def test_the_math_check_finds_unbraced_scripts(text, flagged):
    source = re.sub(r"`[^`]*`", "", text)
    hits = [m for s in MATH.finditer(source) for m in UNBRACED_SCRIPT.finditer(s[1] or s[2])]
    assert bool(hits) is flagged


def test_the_training_lesson_shows_its_loop():
    nb = cells(next(p for p in NOTEBOOKS if p.stem == "05_mlp_training"))
    code = "\n".join(c.source for c in nb if c.cell_type == "code")
    for step in ("for epoch in", "zero_grad()", ".backward()", ".step()"):
        assert step in code, f"05's own cells hold the loop: {step}"
    assert "fit(" not in code, "the loop is on screen, not behind train.fit"


NOTEBOOKS_WITH_EXERCISES = ["01", "02", "03", "04", "05", "06", "07", "08"]


@pytest.mark.parametrize("name", NOTEBOOKS_WITH_EXERCISES)
def test_the_notebook_has_exercises_collapsed_and_checked(name):
    nb = nbformat.read(find_notebook(name), as_version=4)
    solutions = [c for c in nb.cells if "### BEGIN SOLUTION" in c.source]
    assert len(solutions) >= 2, "at least two exercises per notebook"
    for cell in solutions:
        assert cell.metadata["jupyter"]["source_hidden"] is True, "collapsed in JupyterLab"
        following = nb.cells[nb.cells.index(cell) + 1]
        call = re.search(r'^check\("(\d\d\.\d)", (\w+)\)$', following.source, re.MULTILINE)
        assert call and call[1].startswith(name) and call[1] in EXERCISES
        assert "nbval-check-output" in following.metadata.get("tags", [])
        shown = "".join(o.get("text", "") for o in following.outputs)
        assert shown.startswith(f"Exercise {call[1]}, ") and ": right. " in shown
