"""The exercises of notebook 06 (circles): graders with feedback in the lesson's terms."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from bce_helpers.exercises.grading import (
    WRONG_SIGN,
    Exercise,
    call_answer,
    expect_per_element,
    match,
    number_answer,
    typed_match,
    wrong,
)


def _keras_clip(fn: Callable) -> str:
    p = torch.tensor([0.0, 1e-9, 1e-7, 0.01, 0.5, 0.99, 1 - 1e-7, 1.0])
    for target in (1.0, 0.0):
        y = torch.full_like(p, target)
        ref = F.binary_cross_entropy(torch.clip(p, 1e-7, 1 - 1e-7), y, reduction="none").double()
        plain = F.binary_cross_entropy(p, y, reduction="none").double()
        loss_capped = plain.clamp(max=-math.log(1e-7))
        value = call_answer(fn, p, y)
        expect_per_element(value, p.shape, "Keras's rule here")
        edge = "p = 0 (y = 1)" if target == 1 else "p = 1 (y = 0)"
        match(
            value,
            ref,
            {
                f"at {edge} your loss is 100, torch's clamp of the log: Keras clips p to "
                "[1e-7, 1 - 1e-7] first": plain,
                f"at {edge} your loss is 16.1181, -log(1e-7): that is the clip made in "
                "float64 (or a cap on the loss, which gives the same values). Keras clips the "
                "float32 probability, and in float32 1 - 1e-7 rounds to 1 - 2^-23, so its loss "
                "there is 23 ln 2 = 15.9424: clip p in float32": loss_capped,
                WRONG_SIGN: -ref,
            },
            f"for y = {target:g} your losses differ from Keras's",
        )
    return "Keras's clip, then torch's own loss: 16.1181 and 15.9424 at the edges."


def _guess_loss(answer: object) -> str:
    value = number_answer(answer)
    ref = math.log(2)
    mistakes = {
        100 * ref: "a loss is not a percentage (the guide read its curve as 70%): give it in nats",
        1.0: "that is in bits (log2 of 2): torch's BCE uses the natural log",
        0.5: "0.5 is the predicted probability (and a guess's accuracy), not its loss",
        0.0: "a guess is not free: the loss is -log of the probability given to the truth",
        math.log10(2): "you used log10: BCE uses the natural log",
        -ref: WRONG_SIGN,
    }
    if typed_match(value, ref):
        return f"-log 0.5 = ln 2 = {ref:.4f} nats, whatever the label."
    for mistaken, message in mistakes.items():
        if typed_match(value, mistaken):
            raise wrong(message)
    raise wrong(
        f"your value is {value:.4g}, and ln 2 = {ref:.4f}: the loss of p = 0.5 is -log 0.5 "
        "for either label (3 significant digits are enough)"
    )


EXERCISES: dict[str, Exercise] = {
    "06.1": Exercise("the loss of a guess", _guess_loss),
    "06.2": Exercise("Keras's clip against torch's clamp", _keras_clip),
}
