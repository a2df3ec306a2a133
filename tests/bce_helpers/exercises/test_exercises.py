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
from tests.checkout import find_notebook


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
    "04.1": lambda p, w: math.log(w) + math.log(p) - math.log1p(-p),
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


# notebooks 07 and 08: right answers from scikit-learn, wrong ones as a learner writes them
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


def sklearn_ece(p, y, n_bins):
    """ECE from scikit-learn's calibration_curve bins, weighted by counts from NumPy."""
    import numpy as np
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(y.numpy(), p.numpy(), n_bins=n_bins)
    edges = np.linspace(0, 1, n_bins + 1)[1:-1]
    counts = np.bincount(np.searchsorted(edges, p.numpy()), minlength=n_bins)
    counts = counts[counts > 0]
    return float((counts / counts.sum() * np.abs(observed - predicted)).sum())


RIGHT["07.1"] = sklearn_macro_micro
RIGHT["07.2"] = lambda labels: (1 - labels).sum(0) / labels.sum(0)
RIGHT["08.1"] = 0.1  # costs 9 p and 1 - p meet at p = 1 / (1 + 9)
RIGHT["08.2"] = sklearn_ece


def f1s(tp, fp, fn):
    return [
        2 * t / (2 * t + a + b) if 2 * t + a + b else 0.0
        for t, a, b in zip(tp, fp, fn, strict=True)
    ]


def binned(p, y, n_bins, signed=False, weighted=True, edge_up=False):
    """A learner's ECE with one choice changed."""
    index = (p * n_bins).long().clamp(max=n_bins - 1) if edge_up else None
    if index is None:
        index = torch.bucketize(p.double(), torch.linspace(0, 1, n_bins + 1).double()[1:-1])
    gaps, counts = [], []
    for b in range(n_bins):
        inside = index == b
        if inside.any():
            gaps.append((y[inside].mean() - p[inside].mean()).item())
            counts.append(inside.sum().item())
    gaps = gaps if signed else [abs(g) for g in gaps]
    if not weighted:
        return sum(gaps) / len(gaps)
    return sum(c * g for c, g in zip(counts, gaps, strict=True)) / sum(counts)


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
    ("03.2", lambda x, y: ((1 - y) * x + torch.log1p(torch.exp(-x))).mean(), "use |z|"),
    ("03.2", lambda x, y: (F.softplus(x) - y * x).sum(), "the sum, not the mean"),
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
    ("05.1", lambda p: math.log(2), "only for balanced labels"),
    ("05.1", lambda p: -100 * (p * math.log(p) + (1 - p) * math.log(1 - p)), "percentage"),
    ("05.1", lambda p: -(p * math.log2(p) + (1 - p) * math.log2(1 - p)), "in bits"),
    ("05.2", 2352 * 64 + 64 * 32 + 32, "left out the biases"),
    ("05.2", 784 * 64 + 64 + 64 * 32 + 32 + 33, "one colour channel"),
    ("05.2", 152.705, "not in thousands"),  # a Python float, exact in float64 only
    ("05.2", 153, "not in thousands"),  # the thousands to 3 significant digits
    ("05.2", torch.tensor(152.705, dtype=torch.float64), "not in thousands"),
    ("05.2", 153_000, "153,000 is close: count every weight and bias exactly"),
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
    ("08.1", 0.9, "upside down"),
    ("08.1", 0.5, "weighs a miss and a false alarm the same"),
    ("08.1", 0.111, "the odds"),
    ("08.2", lambda p, y, n: binned(p, y, n, weighted=False), "weight each bin's gap"),
    ("08.2", lambda p, y, n: binned(p, y, n, signed=True), "have signs"),
    ("08.2", lambda p, y, n: binned(p, y, n, edge_up=True), "goes to the bin below"),
]


@pytest.mark.parametrize("typed", [0.693, 0.6931, 0.69315, math.log(2)])
def test_a_number_typed_to_three_significant_digits_passes(typed):
    assert grade("06.1", typed).status == "right"


@pytest.mark.parametrize("exercise", ["04.1", "04.2"])
def test_04_never_answers_with_an_exceptions_text(exercise):
    """The order of 04.1 taken into 04.2 (and back) raised "math domain error" before."""
    for answer in (
        lambda a, b: math.log(a * b / (1 - b)),
        lambda a, b: math.log(1 - a) / (1 - b),
        lambda a, b: 1 / (a - a),
    ):
        feedback = grade(exercise, answer)
        assert feedback.status == "wrong"
        for raw in ("math domain error", "division by zero", "float division"):
            assert raw not in feedback.message, feedback.message


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


VALUE_EXERCISES = {"03.1", "05.2", "06.1", "08.1"}  # a number is due; the others ask for a function
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
