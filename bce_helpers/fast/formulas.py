"""The fused loss's formulas in torch: one owner for every path that runs them.

`one_pass` gives the loss, the gradient and a bad-target flag from one read of the logits
and the targets; `exp_neg` and `log1p_series` are its exp and log1p in plain multiplies and
adds, which inductor inlines into the one loop it makes of `one_pass` on the CPU (its own
exp and log1p are vector library calls that cost more than the rest of the loss). The
Triton kernels (bce_helpers.fast.fused_triton) write the same formulas in Triton's
language, with ATANH_SERIES_FLOAT32's coefficients.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from bce_helpers.fast.compiler import is_compiling

# the minimax fit of atanh(s)/s - 1 = z/3 + z^2/5 + ... (z = s^2 <= 1/9) in 4 terms
ATANH_SERIES_FLOAT32 = (
    0.3333320656053216,
    0.20010849882540158,
    0.1399956457508059,
    0.1401225877733188,
)

# atanh(s) / s = 1 + z/3 + z^2/5 + ... with z = s^2 at most 1/9: float64 takes the
# series' first 15 terms; lower precisions a minimax fit of 4 terms (relative error 4.5e-9,
# below float32's rounding; fitted by linear programming on a grid of z in [0, 1/9]).
# fused_triton's kernel uses the float32 coefficients too.
ATANH_SERIES = {
    torch.float64: tuple(1 / (2 * k + 1) for k in range(1, 16)),
    torch.float32: ATANH_SERIES_FLOAT32,
}


def log1p_series(t: Tensor, two_plus_t: Tensor | None = None) -> Tensor:
    """log1p(t) for t in [0, 1] by a short series in plain arithmetic.

    log1p(t) = 2 atanh(s) with s = t / (2 + t) in [0, 1/3], and atanh(s) = s (1 + z/3 +
    z^2/5 + ...) with z = s^2. No rounded 1 + t is formed, so a small t keeps all its digits.
    Why not torch.log1p: on the CPU, inductor's log1p (a vector library call, accurate to
    about 1 ulp) and even its vector log cost more than the rest of the loss; a few
    multiplies and adds are cheaper (notebook 09 times all three). `two_plus_t`: 2 + t
    where the caller has it already."""
    s = t / (2 + t if two_plus_t is None else two_plus_t)
    z = s * s
    # 2 atanh(s) = s (2 + 2 z/3 + 2 z^2/5 + ...): Horner's rule, one multiply-add a term
    last, *rest = reversed(ATANH_SERIES.get(t.dtype, ATANH_SERIES[torch.float32]))
    series = 2 * last * z
    for c in rest:
        series = (series + 2 * c) * z
    return s * (series + 2)


# Cephes' expf range reduction: exp(-a) = 2^-k exp(f), k = round(a / ln 2), f = k ln 2 - a
# (ln 2 in two parts, so f keeps its digits), exp(f) = 1 + f + f^2 P(f) on |f| <= ln 2 / 2,
# with P of degree 4 fitted for the least largest relative error (3e-9: Cephes' degree 5
# is more than float32 needs); in all about 8e-8, as torch's float32 exp.
EXP_LN2_HIGH, EXP_LN2_LOW = 0.693359375, -2.12194440e-4
EXP_POLYNOMIAL = (0.0013814611593261361, 0.008368710055947304, 0.04166838899254799,
                  0.1666652113199234, 0.4999999403953552)  # fmt: skip
# below exp(-87) the result leaves float32's normal range; it stays there (about 1.6e-38)
EXP_FLOOR_ARGUMENT = 87.0


def exp_neg(a: Tensor) -> Tensor:
    """exp(-a) for a >= 0 (or NaN). On the CPU in float32: plain multiplies and adds that
    inductor inlines into the loop (its exp is a vector library call that costs as much as
    the rest of the loss); elsewhere torch.exp."""
    if a.dtype != torch.float32 or a.device.type != "cpu":
        return torch.exp(-a)
    a = torch.clamp(a, max=EXP_FLOOR_ARGUMENT)  # NaN stays NaN
    k = torch.round(a * (1 / math.log(2)))
    f = k * EXP_LN2_HIGH - a + k * EXP_LN2_LOW  # k ln 2 - a, in [-ln 2 / 2, ln 2 / 2]
    p = EXP_POLYNOMIAL[0] * f + EXP_POLYNOMIAL[1]
    for c in EXP_POLYNOMIAL[2:]:
        p = p * f + c
    exp_f = p * (f * f) + f + 1
    # 2^-k exp(f): k taken off exp(f)'s exponent bits, an integer subtraction, not a multiply
    # (exp(f) is in [0.7, 1.42] and k at most 126, so the result stays a normal float)
    return (exp_f.view(torch.int32) - (k.to(torch.int32) << 23)).view(torch.float32)


def _compiling_for_cpu(t: Tensor) -> bool:
    # eagerly (the fallbacks, and MPS, which has no float64) the formulas use torch's own sum
    return t.device.type == "cpu" and is_compiling()


def computing_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the loss is computed in: float64 for float64, float32 for the others."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def one_pass(
    x: Tensor,
    y: Tensor,
    weight: Tensor | None,
    pos_weight: Tensor | None,
    reduction: str,
    need_grad: bool,
    grad_scale: Tensor | None = None,
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Loss, gradient (or None) and a bad-target flag from one read of x and y.

    Per element, with e = exp(-|x|) computed once for both and softplus(-x) = max(-x, 0) +
    log1p(e): loss = w [(1 - y) x + (1 + (p_w - 1) y) softplus(-x)], which is max(x, 0) - x y
    + log1p(e) without weights; gradient = w ((p_w y + 1 - y) sigmoid(x) - p_w y), divided
    by N for 'mean'. 16-bit inputs are computed in float32 and rounded once at the end.
    grad_scale: 1/N for 'mean' as a 0-d tensor of the computing dtype, where the caller has
    it (inside a compiled loop over dynamic sizes, 1/N would be a division per vector).
    Off the CPU, where reading the flag would wait for the device, a bad target's loss and
    gradient are NaN as well."""
    acc = computing_dtype(x.dtype)
    xf, yf = x.to(acc), y.to(acc)
    abs_x = xf.abs()
    e = exp_neg(abs_x)
    one_plus_e = 1 + e
    log1p_e = log1p_series(e, two_plus_t=1 + one_plus_e)
    if pos_weight is None:
        # max(x, 0) - x y = x (c - y) with c = 1 for x >= 0, 0 below
        loss = log1p_e + xf * ((xf >= 0).to(acc) - yf)
    else:
        softplus = (abs_x - xf) * 0.5 + log1p_e  # max(-x, 0) + log1p(e)
        loss = (1 - yf) * xf + (1 + (pos_weight - 1) * yf) * softplus
    if weight is not None:
        loss = loss * weight
    # y (1 - y) >= 0 exactly on [0, 1], and is false for NaN: one multiply-add and a compare
    good = (yf - yf * yf) >= 0
    poison = x.device.type != "cpu"
    if poison:
        loss = torch.where(good, loss, math.nan)
    if reduction != "none" and acc == torch.float32 and _compiling_for_cpu(xf):
        # summed in float64: inductor's float32 sum adds 4096 vectors at a time in float32,
        # further off than float32's rounding over a million elements on one thread (eager
        # torch's sum is not)
        loss = loss.to(torch.float64)
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    bad_target = ~good.all()
    grad = None
    if need_grad:
        r = 1 / one_plus_e  # sigmoid(|x|); one division serves both signs
        sigmoid = torch.where(xf >= 0, r, e * r)
        if pos_weight is None:
            grad = sigmoid - yf
        else:
            positive = pos_weight * yf
            grad = (positive + 1 - yf) * sigmoid - positive
        if weight is not None:
            grad = grad * weight
        if reduction == "mean":  # a multiply per element, not a division
            # (an empty input has an empty gradient: max keeps 1/N finite)
            grad = grad * (1 / max(x.numel(), 1) if grad_scale is None else grad_scale)
        if poison:
            grad = torch.where(good, grad, math.nan)
        grad = grad.to(x.dtype)
    return loss.to(x.dtype), grad, bad_target


def target_gradient(
    x: Tensor,
    weight: Tensor | None,
    pos_weight: Tensor | None,
    reduction: str,
    grad_output: Tensor,
    dtype: torch.dtype,
) -> Tensor:
    """The gradient with respect to the target, as torch's: w ((1 - p_w) logsigmoid(x) - x)."""
    acc = computing_dtype(x.dtype)
    xf = x.to(acc)
    g = -xf if pos_weight is None else (1 - pos_weight.to(acc)) * F.logsigmoid(xf) - xf
    if weight is not None:
        g = g * weight.to(acc)
    if reduction == "mean":
        g = g / x.numel()
    return (g * grad_output.to(acc)).to(dtype)
