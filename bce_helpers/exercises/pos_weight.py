"""The exercises of notebook 04 (pos weight): graders with feedback in the lesson's terms."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from bce_helpers.exercises.grading import (
    WRONG_SIGN,
    Exercise,
    Stop,
    call_answer,
    close,
    expect_one_value,
    match,
    wrong,
)


def _call_p_w(fn: Callable, p: float, w: float, ref: float, what: str) -> torch.Tensor:
    """The learner's fn(p, w). The arguments swapped, an error or a nan become feedback in
    the lesson's terms, never an exception's own text."""
    raised = None
    try:
        value = call_answer(fn, p, w)
    except Stop as stop:
        if not stop.feedback.message.startswith("your function raised "):
            raise
        raised = stop.feedback.message.removeprefix("your function raised ").split(":")[0]
        value = None
    if value is not None and close(value.flatten()[:1], torch.tensor([ref])):
        return value
    try:  # the other order, (w, p)?
        swapped = close(call_answer(fn, w, p).flatten()[:1], torch.tensor([ref]))
    except Stop:
        swapped = False
    if swapped:
        raise wrong(
            f"your function takes (w, p): the check calls it as {what}(p, w), the share of "
            "positives first, then pos_weight, in both exercises of this notebook"
        )
    domain = raised in ("ValueError", "ZeroDivisionError") or (
        value is not None and bool(torch.isnan(value).any())
    )
    if domain:
        raise wrong(
            f"for p = {p:g}, w = {w:g} your function takes the log of 0 or of a negative number "
            f"(or divides by 0), so it has no value; for p in (0, 1) and w > 0, w p and 1 - p "
            f"are positive: check the formula, and that {what} takes its arguments as (p, w)"
        )
    if raised:
        raise wrong(
            f"for p = {p:g}, w = {w:g} your function stopped with a {raised} instead of "
            f"returning a number: {what}(p, w) is called with two floats and returns one float"
        )
    return value


def _optimal_logit(fn: Callable) -> str:
    for p, w in ((0.2, 3.0), (0.1, 0.5), (0.4, 8.0), (0.3, 1.0)):
        ref = math.log(w * p / (1 - p))
        value = _call_p_w(fn, p, w, ref, "optimal_logit")
        expect_one_value(value, 1, "the optimal logit")
        match(
            value.flatten()[0],
            ref,
            {
                "you returned the log-odds of the data, log(p / (1 - p)): the optimum without "
                "pos_weight; weighting the positives by w adds log w": math.log(p / (1 - p)),
                "w is on the wrong side: weighting the positives raises the logit (by log w), "
                "it does not lower it": math.log(p / (w * (1 - p))),
                "that is a probability, sigmoid(b*): the question asks for the logit b*": (
                    w * p / (w * p + 1 - p)
                ),
                "you used log10: the logit is a natural log": math.log10(w * p / (1 - p)),
            },
            f"for p = {p:g}, w = {w:g} your logit differs from the optimum",
        )
    return "The optimum is b* = log(w p / (1 - p)), for every p and w tried."


def weighted_chance_loss(p: float, w: float = 1.0) -> float:
    """The lowest expected BCEWithLogitsLoss(pos_weight=w) of a constant logit, in nats."""
    if not 0 < p < 1 or w <= 0:
        raise ValueError(f"p must lie in (0, 1) and w be > 0, got p={p!r}, w={w!r}")
    q = w * p / (w * p + 1 - p)  # sigmoid of the optimal logit log(w p / (1 - p))
    return -(w * p * math.log(q) + (1 - p) * math.log(1 - q))


def _weighted_chance(fn: Callable) -> str:
    for p, w in ((0.2, 3.0), (0.1, 9.0), (0.3, 0.5), (0.5, 1.0)):
        ref = weighted_chance_loss(p, w)
        value = _call_p_w(fn, p, w, ref, "chance_loss")
        expect_one_value(value, 1, "the chance loss")
        match(
            value.flatten()[0],
            ref,
            {
                "ln 2 is the loss of predicting 0.5, the best constant only for balanced, "
                "unweighted labels": math.log(2),
                "that is the unweighted chance loss H(p): with pos_weight the positives' term "
                "is multiplied by w": weighted_chance_loss(p),
                "you evaluated the weighted loss at sigmoid(b) = p, the unweighted optimum; with "
                "w the best constant moves to sigmoid(b*) = w p / (w p + 1 - p)": -(
                    w * p * math.log(p) + (1 - p) * math.log(1 - p)
                ),
                "that is in bits (log2): torch's losses use the natural log": ref / math.log(2),
                WRONG_SIGN: -ref,
            },
            f"for p = {p:g}, w = {w:g} your loss differs from the best constant's",
        )
    return "The best constant's loss, for every p and w tried."


EXERCISES: dict[str, Exercise] = {
    "04.1": Exercise("the optimal logit under pos_weight", _optimal_logit),
    "04.2": Exercise("the chance loss under pos_weight", _weighted_chance),
}
