"""The exercises' checks: right answers pass, each common mistake gets its own message.

Every answer here is written independently of bce_helpers.exercises: right ones with torch's
own functions, wrong ones as the mistake a learner makes.
"""

from __future__ import annotations

import math
import re

import nbformat
import pytest
import torch
import torch.nn.functional as F

from bce_helpers.exercises import EXERCISES, NOT_ATTEMPTED, check, grade
from bce_helpers.runner import find_notebook


def logit_form(x, y):
    """BCEWithLogitsLoss written out as log(1 + e^x) - y x, overflow-safe via softplus."""
    return (F.softplus(x) - y * x).mean()


RIGHT = {
    "01.1": lambda p, y: torch.autograd.functional.jacobian(
        lambda q: F.binary_cross_entropy(q, y), p
    ),
    "01.2": lambda p, y: F.binary_cross_entropy(p, y),
    "02.1": lambda p, y, m: F.binary_cross_entropy(p[m == 1], y[m == 1]),
    "02.2": lambda out, labels: F.binary_cross_entropy(out.squeeze(1), labels),
    "03.1": 8.3203125,  # float16: 1 / (1 + e^-z) first rounds to 1.0 here (notebook 03)
    "03.2": logit_form,
    "04.1": lambda w, p: math.log(w) + math.log(p) - math.log1p(-p),
    "05.1": lambda p: -(p * math.log(p) + (1 - p) * math.log(1 - p)),
    "05.2": sum(
        p.numel()
        for p in torch.nn.Sequential(
            torch.nn.Linear(3 * 28 * 28, 64), torch.nn.Linear(64, 32), torch.nn.Linear(32, 1)
        ).parameters()
    ),
    "06.1": math.log(2),
    "06.2": lambda p, y: F.binary_cross_entropy(p.clamp(1e-7, 1 - 1e-7), y, reduction="none"),
}


def numeric_chance_loss(p, w):
    """The weighted loss of the best constant logit, by brute force over a fine grid of b."""
    b = torch.linspace(-10, 10, 400_001, dtype=torch.float64)  # steps of 5e-5
    return (-(w * p * F.logsigmoid(b) + (1 - p) * F.logsigmoid(-b))).min().item()


RIGHT["04.2"] = numeric_chance_loss


def textbook(p, y):
    return -(y * p.log() + (1 - y) * (1 - p).log())


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
    ("02.1", lambda p, y, m: F.binary_cross_entropy(p, y, weight=m), "divides by all N = 6"),
    ("02.1", lambda p, y, m: F.binary_cross_entropy(p, y), "ignores the mask"),
    ("02.1", lambda p, y, m: (textbook(p, y) * m).sum(), "the sum, not the mean"),
    ("02.2", lambda out, labels: textbook(out, labels).mean(), "4 x 4 = 16 pairs"),
    ("02.2", lambda out, labels: textbook(out, labels), "16 values"),
    ("02.2", lambda out, labels: textbook(out.squeeze(1), labels).sum(), "the sum, not"),
    ("03.1", 16.635532, "float32's point"),
    ("03.1", 6.25, "bfloat16's point"),
    ("03.1", math.log(2**12 - 1), "holds no logit there"),
    ("03.1", 8.0, "below 1: look higher"),
    ("03.1", 9.0, "look lower"),
    ("03.2", lambda x, y: F.binary_cross_entropy(torch.sigmoid(x), y), "stops at 100"),
    ("03.2", lambda x, y: textbook(torch.sigmoid(x), y).mean(), "your value is inf"),
    ("03.2", lambda x, y: ((1 - y) * x + torch.log1p(torch.exp(-x))).mean(), "use |x|"),
    ("03.2", lambda x, y: (F.softplus(x) - y * x).sum(), "the sum, not the mean"),
    ("04.1", lambda w, p: math.log(p / (1 - p)), "log-odds of the data"),
    ("04.1", lambda w, p: math.log(p / (w * (1 - p))), "wrong side"),
    ("04.1", lambda w, p: w * p / (w * p + 1 - p), "that is a probability"),
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
    ("05.1", lambda p: math.log(2), "only for balanced labels"),
    ("05.1", lambda p: -100 * (p * math.log(p) + (1 - p) * math.log(1 - p)), "percentage"),
    ("05.1", lambda p: -(p * math.log2(p) + (1 - p) * math.log2(1 - p)), "in bits"),
    ("05.2", 2352 * 64 + 64 * 32 + 32, "left out the biases"),
    ("05.2", 784 * 64 + 64 + 64 * 32 + 32 + 33, "one colour channel"),
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
        "clip p in float32",
    ),
]


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_the_right_answer_passes(exercise):
    feedback = grade(exercise, RIGHT[exercise])
    assert feedback.status == "right", feedback.message


@pytest.mark.parametrize(("exercise", "answer", "phrase"), MISTAKES)
def test_each_common_mistake_gets_its_message(exercise, answer, phrase):
    feedback = grade(exercise, answer)
    assert feedback.status == "wrong" and phrase in feedback.message, feedback.message


def test_every_exercise_names_at_least_two_mistakes():
    named = {ex for ex, _, _ in MISTAKES}
    assert named == set(EXERCISES)
    assert all(sum(ex == e for e, _, _ in MISTAKES) >= 2 for ex in EXERCISES)


def placeholder_function(*args):
    """What the student edition leaves: a docstring and `# YOUR CODE HERE`."""
    # YOUR CODE HERE


VALUE_EXERCISES = {"03.1", "05.2", "06.1"}  # a number is due; the others ask for a function
PLACEHOLDERS = [(ex, None) for ex in sorted(EXERCISES)] + [
    (ex, placeholder_function) for ex in sorted(set(EXERCISES) - VALUE_EXERCISES)
]


@pytest.mark.parametrize(("exercise", "placeholder"), PLACEHOLDERS)
def test_the_placeholder_is_not_attempted_yet(exercise, placeholder, capsys):
    check(exercise, placeholder)
    line = capsys.readouterr().out
    assert line.startswith(f"Exercise {exercise}, ") and NOT_ATTEMPTED in line


@pytest.mark.parametrize(
    ("exercise", "answer"),
    [
        ("01.1", lambda p, y: 0.123 * torch.ones_like(p)),
        ("01.2", lambda p, y: 0.123 * torch.ones_like(p).mean()),
    ],
)
def test_01_messages_show_the_numbers_as_typed(exercise, answer):
    """A wrong answer's message quotes the inputs as the learner would type them."""
    feedback = grade(exercise, answer)
    quoted = str([[0.9, 0.2, 0.6], [0.3, 0.5, 0.7]])
    assert feedback.status == "wrong" and quoted in feedback.message, feedback.message
    assert "0.89999" not in feedback.message and "0.30000" not in feedback.message


def test_an_answer_that_raises_is_reported_not_raised(capsys):
    def broken(p, y):
        return p @ torch.ones(2, 2)  # shapes that do not multiply

    check("01.2", broken)
    out = capsys.readouterr().out
    assert "wrong. Your function raised RuntimeError" in out


def test_a_number_where_a_function_is_due_is_reported():
    feedback = grade("01.2", 0.61)
    assert feedback.status == "wrong" and "expected a function" in feedback.message


def test_an_unknown_exercise_is_refused():
    with pytest.raises(ValueError, match=r"exercise='09.9' is not one of \['01.1'"):
        grade("09.9", None)


NOTEBOOKS_WITH_EXERCISES = ["01", "02", "03", "04", "05", "06"]


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
