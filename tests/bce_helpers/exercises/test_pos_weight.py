"""bce_helpers.exercises.pos_weight (notebook 04): the optimal logit and the weighted chance
loss against a brute-force search; each common mistake gets its own message, never an
exception's text."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bce_helpers.exercises import grade, pos_weight
from tests.bce_helpers.exercises.cases import grading_tests


def numeric_chance_loss(p, w):
    """The weighted loss of the best constant logit, by brute force over a fine grid of b."""
    b = torch.linspace(-10, 10, 400_001, dtype=torch.float64)  # steps of 5e-5
    return (-(w * p * F.logsigmoid(b) + (1 - p) * F.logsigmoid(-b))).min().item()


RIGHT = {
    "04.1": lambda p, w: math.log(w) + math.log(p) - math.log1p(-p),
    "04.2": numeric_chance_loss,
}

MISTAKES = [
    ("04.1", lambda p, w: math.log(p / (1 - p)), "log-odds of the data"),
    ("04.1", lambda p, w: math.log(p / (w * (1 - p))), "wrong side"),
    ("04.1", lambda p, w: w * p / (w * p + 1 - p), "that is a probability"),
    # the order (w, p): math.log raises "math domain error", which the learner never sees
    ("04.1", lambda w, p: math.log(w * p / (1 - p)), "your function takes (w, p)"),
    ("04.1", lambda p, w: math.log(w * p / (p - 1)), "log of 0 or of a negative number"),
    ("04.1", lambda p, w: torch.log(torch.tensor(w * p / (p - 1))), "log of 0 or of a negative"),
    ("04.1", lambda p, w: math.log(w * p / (1 - p)) + "", "stopped with a TypeError"),
    ("04.2", lambda w, p: RIGHT["04.2"](p, w), "your function takes (w, p)"),
    ("04.2", lambda p, w: math.log(2), "ln 2 is the loss of predicting 0.5"),
    (
        "04.2",
        lambda p, w: -(p * math.log(p) + (1 - p) * math.log(1 - p)),
        "unweighted chance loss H(p)",
    ),
    (
        "04.2",
        lambda p, w: -(w * p * math.log(p) + (1 - p) * math.log(1 - p)),
        "the unweighted optimum",
    ),
]

(
    test_the_right_answer_passes,
    test_each_common_mistake_gets_its_message,
    test_every_exercise_has_a_right_answer_and_two_mistakes,
) = grading_tests(pos_weight, RIGHT, MISTAKES)


@pytest.mark.parametrize("exercise", ["04.1", "04.2"])
def test_never_answers_with_an_exceptions_text(exercise):
    """Answers that raise inside math (the order of 04.1 taken into 04.2, and back) get the
    lesson's words, not Python's."""
    for answer in (
        lambda a, b: math.log(a * b / (1 - b)),
        lambda a, b: math.log(1 - a) / (1 - b),
        lambda a, b: 1 / (a - a),
    ):
        feedback = grade(exercise, answer)
        assert feedback.status == "wrong"
        for raw in ("math domain error", "division by zero", "float division"):
            assert raw not in feedback.message, feedback.message


@pytest.mark.parametrize(("p", "w"), [(0.2, 3.0), (0.1, 9.0), (0.3, 0.5), (0.5, 1.0), (0.4, 1.0)])
def test_weighted_chance_loss_is_the_brute_force_minimum(p, w):
    assert pos_weight.weighted_chance_loss(p, w) == pytest.approx(numeric_chance_loss(p, w), 1e-9)


def test_weighted_chance_loss_defaults_to_the_label_entropy():
    p = 0.3
    assert pos_weight.weighted_chance_loss(p) == pytest.approx(
        -(p * math.log(p) + (1 - p) * math.log(1 - p)), rel=1e-12
    )


@pytest.mark.parametrize(("p", "w"), [(0.0, 1.0), (1.0, 1.0), (-0.1, 2.0), (0.3, 0.0), (0.3, -1.0)])
def test_weighted_chance_loss_refuses_p_outside_0_1_and_w_not_positive(p, w):
    with pytest.raises(ValueError) as refused:
        pos_weight.weighted_chance_loss(p, w)
    assert str(refused.value) == f"p must lie in (0, 1) and w be > 0, got p={p!r}, w={w!r}"
