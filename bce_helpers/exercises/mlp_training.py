"""The exercises of notebook 05 (mlp training): graders with feedback in the lesson's terms."""

from __future__ import annotations

import math
from collections.abc import Callable

from bce_helpers.exercises.grading import (
    WRONG_SIGN,
    Exercise,
    call_answer,
    expect_one_value,
    match,
    number_answer,
    wrong,
)
from bce_helpers.exercises.pos_weight import weighted_chance_loss


def _chance_loss(fn: Callable) -> str:
    for p in (0.514, 0.2, 0.5, 0.05):
        ref = weighted_chance_loss(p)
        value = call_answer(fn, p)
        expect_one_value(value, 1, "the chance loss")
        match(
            value.flatten()[0],
            ref,
            {
                "ln 2 is the chance loss only for balanced labels: the best constant predicts "
                "the share p of label 1 and costs H(p)": math.log(2),
                "a loss is not a percentage: give it in nats": ref * 100,
                "that is in bits (log2): torch's losses use the natural log": ref / math.log(2),
                "you left out the negatives' term, (1 - p) log(1 - p)": -p * math.log(p),
                WRONG_SIGN: -ref,
            },
            f"for a share of {p:g} your loss differs from the best constant's",
        )
    return "H(p) = -[p log p + (1 - p) log(1 - p)], for every share tried."


def _count(answer: object) -> float:
    """A typed count as a float64: 152.705 stays 152.705 (through float32 it would not)."""
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        return float(answer)
    return number_answer(answer)


def _mlp_parameters(answer: object) -> str:
    n = _count(answer)
    sizes = [(2352, 64), (64, 32), (32, 1)]
    ref = sum(i * o + o for i, o in sizes)
    mistakes = {
        sum(i * o for i, o in sizes): "you left out the biases: 64 + 32 + 1 more",
        sum(i * o + o for i, o in [(784, 64), (64, 32), (32, 1)]): "you counted one colour "
        "channel: the input is 3 x 28 x 28 = 2352 numbers",
        2352 * 64 + 64: "you counted only the first layer",
    }
    if n == ref:
        return f"{ref:,} weights and biases."
    if n in mistakes:
        raise wrong(mistakes[n])
    if abs(n - ref / 1000) <= 0.5:  # 152.705, 152.7 or 153: thousands, to 3 digits or more
        raise wrong(f"give the count itself, not in thousands: {n:g} thousand is not exact")
    if abs(n - ref) <= 500:  # 152,700 or 153,000: the count, rounded
        raise wrong(f"{n:,.0f} is close: count every weight and bias exactly")
    raise wrong(f"your count is {n:,.0f}: count weights and biases of all three Linear layers")


EXERCISES: dict[str, Exercise] = {
    "05.1": Exercise("the chance loss for a label balance", _chance_loss),
    "05.2": Exercise("the guide's MLP, counted", _mlp_parameters),
}
