"""The exercises of notebook 01 (bce loss): graders with feedback in the lesson's terms."""

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
    close,
    expect_one_value,
    expect_per_element,
    listed,
    match,
    wrong,
)

# 2 x 3, like the lesson's Example 1: len(p) (2 rows) is not p.numel() (6 elements); the last
# two targets are soft, as in the lesson's examples.
_P01 = torch.tensor([[0.9, 0.2, 0.6], [0.3, 0.5, 0.7]])
_Y01 = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.5, 0.25]])


def _by_rows(n: int, rows: int) -> str:
    return (
        f"you divided by len(p) = {rows}, the number of rows; the mean is over all "
        f"N = {n} elements: divide by p.numel()"
    )


def _bce_by_hand(fn: Callable) -> str:
    p, y = _P01, _Y01
    ref = F.binary_cross_entropy(p, y).double()
    value = call_answer(fn, p, y)
    expect_one_value(value, p.numel(), "nn.BCELoss's value")
    # the probability given to what happened, written with torch.where, treats a soft target
    # as 0 or 1
    given = [torch.where(y == 1, p, 1 - p), torch.where(y == 0, 1 - p, p)]
    given.append(torch.where(y >= 0.5, p, 1 - p))
    if any(close(value, -g.log().mean().double()) for g in given):
        raise wrong(
            f"the targets here are soft ({listed(y[(y > 0) & (y < 1)])}): the probability "
            "given to what happened, torch.where(y == 1, p, 1 - p), is for 0-or-1 labels only; "
            "a soft target needs both terms, y log p + (1 - y) log(1 - p)"
        )
    match(
        value,
        ref,
        {
            SUM_NOT_MEAN: ref * p.numel(),
            _by_rows(p.numel(), len(p)): ref * p.numel() / len(p),
            WRONG_SIGN: -ref,
            "you used log10 (or log2): BCE uses the natural log": ref / math.log(10),
            "you used log2: BCE uses the natural log (nats, not bits)": ref / math.log(2),
        },
        f"on p = {listed(p)}, y = {listed(y)} your loss differs from nn.BCELoss's",
    )
    edge = call_answer(fn, torch.tensor([0.0]), torch.tensor([1.0])).flatten()
    if torch.isinf(edge).any():
        raise wrong(
            "at p = 0 (y = 1) your value is inf: torch clamps the log at -100, so the worst "
            "loss per element is 100"
        )
    keras_cap = -math.log(torch.tensor(1e-7).item())
    match(
        edge,
        torch.tensor([100.0]),
        {
            f"at p = 0 (y = 1) your loss is {keras_cap:.4f}: you clipped the probability, as "
            "Keras does (notebook 06); torch clamps the log at -100 instead, so it gives 100": [
                keras_cap
            ],
            "at p = 0 (y = 1) your value is nan: torch clamps the log at -100, so it gives 100": [
                math.nan
            ],
        },
        f"at p = 0 (y = 1) your loss is {edge[0].item():.4g}: if you clamped p, torch clamps "
        "only the log, at -100, so it gives 100",
    )
    far = call_answer(fn, torch.tensor([1e-13]), torch.tensor([1.0])).flatten()
    match(
        far,
        torch.tensor([-math.log(torch.tensor(1e-13).item())]),
        {
            "at p = 1e-13 (y = 1) your loss is 27.63, the log of 1e-12: you clamped p; torch "
            "clamps only the log, at -100, so -log(1e-13) = 29.93 stands": [-math.log(1e-12)],
        },
        "at p = 1e-13, y = 1 your loss differs from torch's 29.93 (the clamp is on the log)",
    )
    both = call_answer(fn, torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0])).flatten()
    if torch.isnan(both).any():
        raise wrong(
            "at p = y = 0 (or p = y = 1) your value is nan: 0 * log 0 is 0 * (-inf) = nan; "
            "clamp the log at -100 before multiplying by the target"
        )
    match(both, torch.zeros(1), {}, "at p = y = 0 and p = y = 1 the loss is 0")
    return "It matches nn.BCELoss, at p = 0, 1 and 1e-13 too."


def _bce_gradient(fn: Callable) -> str:
    p, y = _P01, _Y01
    leaf = p.clone().requires_grad_()
    F.binary_cross_entropy(leaf, y).backward()
    ref = leaf.grad.double()
    value = call_answer(fn, p, y)
    expect_per_element(value, p.shape, "the gradient")
    n = p.numel()
    by_logit = (p - y).double() / n
    match(
        value,
        ref,
        {
            f"that is the gradient of the sum: the mean divides every slope by N = {n}": ref * n,
            _by_rows(n, len(p)): ref * n / len(p),
            "wrong sign: raising p towards y must lower the loss, so the slope is (p - y) / ...,"
            " negative where p < y": -ref,
            "that is the gradient with respect to the logit z, (sigmoid(z) - y) / N; with "
            "respect to p, divide also by p (1 - p)": by_logit,
            "that is the gradient of the sum with respect to the logit z, p - y; with respect "
            "to p, divide by p (1 - p), and by N for the mean": by_logit * n,
        },
        f"on p = {listed(p)}, y = {listed(y)} your slopes differ from autograd's",
    )
    return "It matches autograd, element by element."


EXERCISES: dict[str, Exercise] = {
    "01.1": Exercise("the gradient of BCE with respect to p", _bce_gradient),
    "01.2": Exercise("BCE by hand, with torch's clamp", _bce_by_hand),
}
