"""bce_helpers.exercises.bce_loss (notebook 01): right answers from torch's own BCE and
autograd pass; each common mistake gets its own message."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bce_helpers.exercises import bce_loss, grade
from tests.bce_helpers.exercises.cases import grading_tests, textbook

RIGHT = {
    "01.1": lambda p, y: torch.autograd.functional.jacobian(
        lambda q: F.binary_cross_entropy(q, y), p
    ),
    "01.2": lambda p, y: F.binary_cross_entropy(p, y),
}

MISTAKES = [
    # (exercise, wrong answer, a phrase its message must contain)
    ("01.1", lambda p, y: (p - y) / (p * (1 - p)), "the gradient of the sum"),
    ("01.1", lambda p, y: (y - p) / (p * (1 - p)) / p.numel(), "wrong sign"),
    ("01.1", lambda p, y: (p - y) / p.numel(), "with respect to the logit"),
    ("01.1", lambda p, y: (p - y) / (p * (1 - p)) / len(p), "divided by len(p) = 2"),
    ("01.2", lambda p, y: textbook(p, y).sum() / len(p), "divided by len(p) = 2"),
    (
        "01.2",
        lambda p, y: -torch.where(y == 1, p, 1 - p).log().clamp(min=-100).mean(),
        "the targets here are soft ([0.5, 0.25])",
    ),
    ("01.2", lambda p, y: -torch.where(y > 0.5, p, 1 - p).log().mean(), "targets here are soft"),
    ("01.2", lambda p, y: textbook(p, y).mean(), "at p = 0 (y = 1) your value is inf"),
    ("01.2", lambda p, y: F.binary_cross_entropy(p, y, reduction="sum"), "the sum, not the mean"),
    ("01.2", lambda p, y: -F.binary_cross_entropy(p, y), "wrong sign"),
    ("01.2", lambda p, y: textbook(p.clamp(1e-7, 1 - 1e-7), y).mean(), "as Keras does"),
    ("01.2", lambda p, y: textbook(p.clamp(1e-12, 1 - 1e-12), y).mean(), "if you clamped p"),
    (
        "01.2",
        lambda p, y: -(y * p.log() + (1 - y) * (1 - p).log()).clamp(min=-100, max=100).mean(),
        "0 * log 0",
    ),
]

(
    test_the_right_answer_passes,
    test_each_common_mistake_gets_its_message,
    test_every_exercise_has_a_right_answer_and_two_mistakes,
) = grading_tests(bce_loss, RIGHT, MISTAKES)


@pytest.mark.parametrize(
    ("exercise", "answer"),
    [
        ("01.1", lambda p, y: 0.123 * torch.ones_like(p)),
        ("01.2", lambda p, y: 0.123 * torch.ones_like(p).mean()),
    ],
)
def test_messages_show_the_numbers_as_typed(exercise, answer):
    """A wrong answer's message quotes the inputs as the learner would type them."""
    feedback = grade(exercise, answer)
    quoted = str([[0.9, 0.2, 0.6], [0.3, 0.5, 0.7]])
    assert feedback.status == "wrong" and quoted in feedback.message, feedback.message
    assert "0.89999" not in feedback.message and "0.30000" not in feedback.message
