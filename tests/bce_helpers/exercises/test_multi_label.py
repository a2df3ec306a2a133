"""bce_helpers.exercises.multi_label (notebook 07): F1 macro and micro against scikit-learn,
pos_weight per column; each common mistake gets its own message."""

from __future__ import annotations

import torch

from bce_helpers.exercises import multi_label
from tests.bce_helpers.exercises.cases import grading_tests


def sklearn_macro_micro(tp, fp, fn):
    """Rebuild 0/1 labels and predictions from the counts; let scikit-learn average."""
    from sklearn.metrics import f1_score

    columns = []
    for t, f_p, f_n in zip(tp.int().tolist(), fp.int().tolist(), fn.int().tolist(), strict=True):
        truth = [1] * t + [0] * f_p + [1] * f_n + [0]  # one true negative each
        guess = [1] * t + [1] * f_p + [0] * f_n + [0]
        columns.append((truth, guess))
    rows = max(len(t) for t, _ in columns)
    y = torch.tensor([t + [0] * (rows - len(t)) for t, _ in columns]).T
    p = torch.tensor([g + [0] * (rows - len(g)) for _, g in columns]).T
    return (
        f1_score(y, p, average="macro", zero_division=0),
        f1_score(y, p, average="micro", zero_division=0),
    )


def f1s(tp, fp, fn):
    """Each label's F1, 0 where it has no positives and predicts none."""
    return [
        2 * t / (2 * t + a + b) if 2 * t + a + b else 0.0
        for t, a, b in zip(tp, fp, fn, strict=True)
    ]


RIGHT = {
    "07.1": sklearn_macro_micro,
    "07.2": lambda labels: (1 - labels).sum(0) / labels.sum(0),
}

MISTAKES = [
    ("07.1", lambda tp, fp, fn: tuple(reversed(sklearn_macro_micro(tp, fp, fn))), "swapped"),
    (
        "07.1",
        lambda tp, fp, fn: (torch.tensor(f1s(tp, fp, fn)).mean(),) * 2,
        "micro adds up TP, FP and FN",
    ),
    (
        "07.1",
        lambda tp, fp, fn: ((2 * tp / (2 * tp + fp + fn)).mean(), 0.5),
        "0 / 0",
    ),
    ("07.2", lambda labels: (1 - labels).sum(1) / labels.sum(1), "dim 0"),
    ("07.2", lambda labels: labels.sum(0) / (1 - labels).sum(0), "upside down"),
    ("07.2", lambda labels: (1 - labels).mean(0), "share of negatives"),
    ("07.2", lambda labels: (1 - labels).sum() / labels.sum(), "one number for all labels"),
]

(
    test_the_right_answer_passes,
    test_each_common_mistake_gets_its_message,
    test_every_exercise_has_a_right_answer_and_two_mistakes,
) = grading_tests(multi_label, RIGHT, MISTAKES)
