"""bce_helpers.exercises.circles (notebook 06): ln 2 typed to 3 significant digits and
Keras's clip pass; each common mistake gets its own message."""

from __future__ import annotations

import math

import pytest
import torch.nn.functional as F

from bce_helpers.exercises import circles, grade
from tests.bce_helpers.exercises.cases import grading_tests

RIGHT = {
    "06.1": math.log(2),
    "06.2": lambda p, y: F.binary_cross_entropy(p.clamp(1e-7, 1 - 1e-7), y, reduction="none"),
}

MISTAKES = [
    ("06.1", 69.31471805599453, "not a percentage"),
    ("06.1", 1.0, "in bits"),
    ("06.1", 0.5, "predicted probability"),
    ("06.2", lambda p, y: F.binary_cross_entropy(p, y, reduction="none"), "is 100"),
    (
        "06.2",
        lambda p, y: F.binary_cross_entropy(p, y, reduction="none").clamp(max=-math.log(1e-7)),
        "1 - 1e-7 rounds to 1 - 2^-23",
    ),
    (
        "06.2",
        lambda p, y: F.binary_cross_entropy(
            p.double().clamp(1e-7, 1 - 1e-7), y.double(), reduction="none"
        ),
        "the clip made in float64",
    ),
    ("06.1", 0.694, "ln 2 = 0.6931"),
    ("06.1", 0.69, "3 significant digits"),
]

(
    test_the_right_answer_passes,
    test_each_common_mistake_gets_its_message,
    test_every_exercise_has_a_right_answer_and_two_mistakes,
) = grading_tests(circles, RIGHT, MISTAKES)


@pytest.mark.parametrize("typed", [0.693, 0.6931, 0.69315, math.log(2)])
def test_ln_2_typed_to_three_significant_digits_or_more_passes(typed):
    assert grade("06.1", typed).status == "right"
