"""bce_helpers.exercises.functional_bce (notebook 02): right answers from torch's own BCE
pass; each common mistake gets its own message."""

from __future__ import annotations

import torch.nn.functional as F

from bce_helpers.exercises import functional_bce
from tests.bce_helpers.exercises.cases import grading_tests, textbook

RIGHT = {
    "02.1": lambda p, y, m: F.binary_cross_entropy(p[m == 1], y[m == 1]),
    "02.2": lambda out, labels: F.binary_cross_entropy(out.squeeze(1), labels),
}

MISTAKES = [
    ("02.1", lambda p, y, m: F.binary_cross_entropy(p, y, weight=m), "divides by all N = 6"),
    ("02.1", lambda p, y, m: F.binary_cross_entropy(p, y), "ignores the mask"),
    ("02.1", lambda p, y, m: (textbook(p, y) * m).sum(), "the sum, not the mean"),
    ("02.2", lambda out, labels: textbook(out, labels).mean(), "4 x 4 = 16 pairs"),
    ("02.2", lambda out, labels: textbook(out, labels), "16 values"),
    ("02.2", lambda out, labels: textbook(out.squeeze(1), labels).sum(), "the sum, not"),
]

(
    test_the_right_answer_passes,
    test_each_common_mistake_gets_its_message,
    test_every_exercise_has_a_right_answer_and_two_mistakes,
) = grading_tests(functional_bce, RIGHT, MISTAKES)
