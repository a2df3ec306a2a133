"""The exercises of notebook 02 (functional bce): graders with feedback in the lesson's terms."""

from __future__ import annotations

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
    wrong,
)


def _column_loss(fn: Callable) -> str:
    out = torch.tensor([[0.8], [0.3], [0.6], [0.9]])
    labels = torch.tensor([1.0, 0.0, 0.0, 1.0])
    ref = F.binary_cross_entropy(out, labels.view(-1, 1)).double()
    broadcast = F.binary_cross_entropy(out.expand(4, 4), labels.expand(4, 4)).double()
    value = call_answer(fn, out, labels)
    if value.numel() == 16:
        raise wrong(
            "your result has 4 x 4 = 16 values: broadcasting paired every output with every "
            "label; reshape the labels with labels.view(-1, 1) (or squeeze the output)"
        )
    expect_one_value(value, 4, "the loss")
    match(
        value,
        ref,
        {
            "your mean is over 4 x 4 = 16 pairs: broadcasting [4, 1] against [4] paired every "
            "output with every label; reshape the labels with labels.view(-1, 1)": broadcast,
            SUM_NOT_MEAN: ref * 4,
            WRONG_SIGN: -ref,
        },
        "your loss differs from F.binary_cross_entropy(out, labels.view(-1, 1))",
    )
    return "Four outputs, four labels, one pair each."


def _masked_mean(fn: Callable) -> str:
    p = torch.tensor([[0.9, 0.2, 0.6], [0.3, 0.8, 0.4]])
    y = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    kept_sum = F.binary_cross_entropy(p, y, weight=mask, reduction="sum").double()
    ref = kept_sum / mask.sum()
    value = call_answer(fn, p, y, mask)
    expect_one_value(value, p.numel(), "the masked mean")
    match(
        value,
        ref,
        {
            "your mean divides by all N = 6 elements, as F.binary_cross_entropy(weight=mask) "
            "does: 'mean' divides by N, not by the weights' sum; divide the sum by mask.sum()": (
                kept_sum / p.numel()
            ),
            "your value ignores the mask: it is the mean over all elements": F.binary_cross_entropy(
                p, y
            ).double(),
            SUM_NOT_MEAN: kept_sum,
            WRONG_SIGN: -ref,
        },
        "your value differs from the mean loss over the 3 kept elements",
    )
    return "The mean over the kept elements only."


EXERCISES: dict[str, Exercise] = {
    "02.1": Exercise("the mean loss over a mask", _masked_mean),
    "02.2": Exercise("a loss for outputs [N, 1] and labels [N]", _column_loss),
}
