"""The exercises of notebook 03 (bce with logits): graders with feedback in the lesson's terms."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from bce_helpers.exercises.grading import (
    SUM_NOT_MEAN,
    WRONG_SIGN,
    Exercise,
    call_answer,
    expect_one_value,
    match,
    number_answer,
    wrong,
)
from bce_helpers.saturation import first_saturating_logit


def _stable_logits(fn: Callable) -> str:
    z = torch.tensor([0.3, -1.2, 2.0, 0.7])
    y = torch.tensor([1.0, 0.0, 0.0, 1.0])
    ref = F.binary_cross_entropy_with_logits(z, y).double()
    value = call_answer(fn, z, y)
    expect_one_value(value, z.numel(), "BCEWithLogitsLoss's value")
    match(
        value,
        ref,
        {SUM_NOT_MEAN: ref * z.numel(), WRONG_SIGN: -ref},
        f"on z = {z.tolist()}, y = {y.tolist()} your loss differs from BCEWithLogitsLoss's",
    )
    for zi, yi in ((1000.0, 0.0), (-1000.0, 1.0), (1000.0, 1.0), (-1000.0, 0.0)):
        zt, yt = torch.tensor([zi]), torch.tensor([yi])
        exact = F.binary_cross_entropy_with_logits(zt, yt).double()
        got = call_answer(fn, zt, yt).flatten()
        where = f"at z = {zi:g}, y = {yi:g}"
        if torch.isinf(got).any():
            why = "exp(-z) overflows for negative z: use |z|" if zi < 0 else "log 0 = -inf"
            raise wrong(
                f"{where} your value is inf ({why}); the stable form "
                "min(z, 0) - log1p(exp(-|z|)) never takes the exp of a positive number"
            )
        if torch.isnan(got).any():
            raise wrong(
                f"{where} your value is nan (0 * log 0, or inf - inf): compute from the logit, "
                "(1 - y) z - log sigmoid(z) with log sigmoid(z) = min(z, 0) - log1p(exp(-|z|))"
            )
        match(
            got,
            exact.view(1),
            {
                f"{where} your loss stops at 100: that is BCELoss's clamp after a sigmoid that "
                f"rounded to {1 - yi:g}; compute from the logit, the loss is {exact.item():g}": [
                    100.0
                ],
            },
            f"{where} your loss differs from BCEWithLogitsLoss's",
        )
    return "It matches BCEWithLogitsLoss, at z = +-1000 too."


def _float16_saturation(answer: object) -> str:
    z = number_answer(answer)
    ref = first_saturating_logit(torch.float16)
    if torch.tensor(z, dtype=torch.float16).item() == ref and abs(z - ref) < 1e-3:
        return f"sigmoid is 1.0 in float16 from z = {ref:.4f} on."
    mistakes = {
        first_saturating_logit(torch.float32): "that is float32's point (24 ln 2): float16 has "
        "far fewer bits, so its sigmoid reaches 1.0 much sooner",
        first_saturating_logit(torch.bfloat16): "that is bfloat16's point: float16 has 3 more "
        "bits of mantissa, so it holds out a little longer",
        math.log(2**12 - 1): "ln(2^12 - 1) = 8.3175 is where the exact sigmoid comes within "
        "half a float16 spacing of 1, but float16 holds no logit there: give the first float16 "
        "logit past it",
    }
    for value, message in mistakes.items():
        if abs(z - value) < 1e-3:
            raise wrong(message)
    half = torch.tensor([z], dtype=torch.float16)
    if not torch.isfinite(half).all() or torch.sigmoid(half).item() < 1.0:
        shown = torch.sigmoid(half).item()
        raise wrong(f"in float16, sigmoid({half.item():.4f}) is {shown!r}, below 1: look higher")
    below = torch.nextafter(half, torch.zeros_like(half))
    raise wrong(
        f"sigmoid is 1.0 at {half.item():.4f}, but already at the float16 below it, "
        f"{below.item():.4f}: look lower"
    )


EXERCISES: dict[str, Exercise] = {
    "03.1": Exercise("where float16's sigmoid saturates", _float16_saturation),
    "03.2": Exercise("the stable logit form", _stable_logits),
}
