"""bce_helpers.exercises (the package's __init__): the registry of every notebook's exercises,
`grade` and `check`, which never raise for an answer."""

from __future__ import annotations

import re

import pytest
import torch

from bce_helpers.exercises import (
    EXERCISES,
    NOT_ATTEMPTED,
    bce_loss,
    bce_with_logits,
    check,
    circles,
    functional_bce,
    grade,
    mlp_training,
    multi_label,
    pos_weight,
    thresholds_calibration,
)

# each notebook's module, in the notebooks' order
MODULES = {
    "01": bce_loss,
    "02": functional_bce,
    "03": bce_with_logits,
    "04": pos_weight,
    "05": mlp_training,
    "06": circles,
    "07": multi_label,
    "08": thresholds_calibration,
}


def test_the_registry_holds_each_notebooks_exercises_under_its_number():
    merged = {}
    for number, module in MODULES.items():
        assert module.EXERCISES and all(re.fullmatch(rf"{number}\.\d", e) for e in module.EXERCISES)
        merged.update(module.EXERCISES)
    assert merged == EXERCISES and len(EXERCISES) == sum(len(m.EXERCISES) for m in MODULES.values())


def placeholder_function(*args):
    """What the student edition leaves: a docstring and `# YOUR CODE HERE`."""
    # YOUR CODE HERE


VALUE_EXERCISES = {"03.1", "05.2", "06.1", "08.1"}  # a number is due; the others ask for a function
PLACEHOLDERS = [(ex, None) for ex in sorted(EXERCISES)] + [
    (ex, placeholder_function) for ex in sorted(set(EXERCISES) - VALUE_EXERCISES)
]


@pytest.mark.parametrize(("exercise", "placeholder"), PLACEHOLDERS)
def test_the_placeholder_is_not_attempted_yet(exercise, placeholder, capsys):
    check(exercise, placeholder)
    line = capsys.readouterr().out
    assert line == (
        f"Exercise {exercise}, {EXERCISES[exercise].title}: {NOT_ATTEMPTED} (write your answer "
        "in the cell above, run both)\n"
    )


def test_check_prints_one_line_with_the_exercises_title(capsys):
    check("01.2", lambda p, y: torch.nn.functional.binary_cross_entropy(p, y))
    assert capsys.readouterr().out == (
        "Exercise 01.2, BCE by hand, with torch's clamp: right. It matches nn.BCELoss, at p = 0, "
        "1 and 1e-13 too.\n"
    )


def test_an_answer_that_raises_is_reported_not_raised(capsys):
    def broken(p, y):
        return p @ torch.ones(2, 2)  # shapes that do not multiply

    check("01.2", broken)
    out = capsys.readouterr().out
    assert out.startswith("Exercise 01.2, BCE by hand, with torch's clamp: wrong. Your function ")
    assert "raised RuntimeError" in out


def test_a_number_where_a_function_is_due_is_reported():
    feedback = grade("01.2", 0.61)
    assert feedback.status == "wrong" and "expected a function" in feedback.message


def test_an_unknown_exercise_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError) as refused:
        grade("09.9", None)
    assert str(refused.value) == f"exercise='09.9' is not one of {sorted(EXERCISES)}"
    with pytest.raises(ValueError, match=r"exercise='09.9' is not one of \['01.1'"):
        check("09.9", None)
