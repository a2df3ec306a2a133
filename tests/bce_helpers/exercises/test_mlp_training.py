"""bce_helpers.exercises.mlp_training (notebook 05): the chance loss and the MLP's parameter
count (counted from torch's own layers) pass; each common mistake gets its own message."""

from __future__ import annotations

import math

import torch

from bce_helpers.exercises import mlp_training
from tests.bce_helpers.exercises.cases import grading_tests

RIGHT = {
    "05.1": lambda p: -(p * math.log(p) + (1 - p) * math.log(1 - p)),
    "05.2": sum(
        p.numel()
        for p in torch.nn.Sequential(
            torch.nn.Linear(3 * 28 * 28, 64), torch.nn.Linear(64, 32), torch.nn.Linear(32, 1)
        ).parameters()
    ),
}

MISTAKES = [
    ("05.1", lambda p: math.log(2), "only for balanced labels"),
    ("05.1", lambda p: -100 * (p * math.log(p) + (1 - p) * math.log(1 - p)), "percentage"),
    ("05.1", lambda p: -(p * math.log2(p) + (1 - p) * math.log2(1 - p)), "in bits"),
    ("05.2", 2352 * 64 + 64 * 32 + 32, "left out the biases"),
    ("05.2", 784 * 64 + 64 + 64 * 32 + 32 + 33, "one colour channel"),
    ("05.2", 152.705, "not in thousands"),  # a Python float, exact in float64 only
    ("05.2", 153, "not in thousands"),  # the thousands to 3 significant digits
    ("05.2", torch.tensor(152.705, dtype=torch.float64), "not in thousands"),
    ("05.2", 153_000, "153,000 is close: count every weight and bias exactly"),
]

(
    test_the_right_answer_passes,
    test_each_common_mistake_gets_its_message,
    test_every_exercise_has_a_right_answer_and_two_mistakes,
) = grading_tests(mlp_training, RIGHT, MISTAKES)
