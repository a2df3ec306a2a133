"""bce_helpers.exercises.bce_with_logits (notebook 03): the overflow-safe logit form and
float16's saturation point pass; each common mistake gets its own message."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bce_helpers.exercises import bce_with_logits
from tests.bce_helpers.exercises.cases import grading_tests, textbook


def logit_form(x, y):
    """BCEWithLogitsLoss written out as log(1 + e^x) - y x, overflow-safe via softplus."""
    return (F.softplus(x) - y * x).mean()


RIGHT = {
    "03.1": 8.3203125,  # float16: 1 / (1 + e^-z) first rounds to 1.0 here (notebook 03)
    "03.2": logit_form,
}

MISTAKES = [
    ("03.1", 16.635532, "float32's point"),
    ("03.1", 6.25, "bfloat16's point"),
    ("03.1", math.log(2**12 - 1), "holds no logit there"),
    ("03.1", 8.0, "below 1: look higher"),
    ("03.1", 9.0, "look lower"),
    ("03.2", lambda x, y: F.binary_cross_entropy(torch.sigmoid(x), y), "stops at 100"),
    ("03.2", lambda x, y: textbook(torch.sigmoid(x), y).mean(), "your value is inf"),
    ("03.2", lambda x, y: ((1 - y) * x + torch.log1p(torch.exp(-x))).mean(), "use |z|"),
    ("03.2", lambda x, y: (F.softplus(x) - y * x).sum(), "the sum, not the mean"),
]

(
    test_the_right_answer_passes,
    test_each_common_mistake_gets_its_message,
    test_every_exercise_has_a_right_answer_and_two_mistakes,
) = grading_tests(bce_with_logits, RIGHT, MISTAKES)
