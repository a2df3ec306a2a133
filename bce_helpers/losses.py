"""Binary cross-entropy written from scratch with plain tensor operations.

``bce`` and ``bce_with_logits`` reproduce ``torch.nn.functional.binary_cross_entropy``
and ``binary_cross_entropy_with_logits`` operation for operation (the -100 clamp of the
log terms, 'mean' over all elements even with a weight, broadcasting of weight and
pos_weight), so their values and gradients match torch's. Unlike torch, they check
their arguments first and raise a ``ValueError`` that names the argument.
"""

from __future__ import annotations

import torch
from torch import Tensor

REDUCTIONS = ("none", "mean", "sum")
LOG_CLAMP = -100.0  # torch clamps log(p) and log(1 - p) here, so BCE never returns inf


def _describe(x: object) -> str:
    if isinstance(x, Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return f"{type(x).__name__} {x!r}"


def _check_tensor(name: str, x: object) -> None:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {_describe(x)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {_describe(x)}")


def _check_unit_interval(name: str, x: Tensor) -> None:
    bad = torch.isnan(x) | (x < 0) | (x > 1)
    if bool(bad.any()):
        first = x[bad].flatten()[0].item()
        raise ValueError(
            f"{name} must lie in [0, 1] with no NaN, but {int(bad.sum())} of its "
            f"{x.numel()} elements do not (first: {first})"
        )


def _check_broadcasts(name: str, x: object, shape: torch.Size) -> None:
    """A weight-like tensor must broadcast to `shape` without changing it."""
    if x is None:
        return
    _check_tensor(name, x)
    try:
        result = torch.broadcast_shapes(x.shape, shape)
    except RuntimeError:
        result = None
    if result != shape:
        raise ValueError(
            f"{name} of shape {tuple(x.shape)} does not broadcast to the input's shape "
            f"{tuple(shape)} (broadcasting aligns trailing dimensions: for a per-class "
            f"[C] tensor on [B, C, H, W] use shape [C, 1, 1])"
        )


def check_bce_args(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    pos_weight: Tensor | None = None,
    reduction: str = "mean",
    *,
    probabilities: bool,
    check_values: bool = True,
) -> None:
    """Raise a ValueError naming the first bad argument of a BCE call.

    With check_values=False only types, shapes and reduction are checked (no pass over
    the data); the caller then checks the targets' range itself.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    _check_tensor("input", input)
    _check_tensor("target", target)
    if target.shape != input.shape:
        raise ValueError(
            f"target shape {tuple(target.shape)} must equal input shape {tuple(input.shape)}"
        )
    _check_broadcasts("weight", weight, input.shape)
    _check_broadcasts("pos_weight", pos_weight, input.shape)
    if check_values:
        if probabilities:
            _check_unit_interval("input (probabilities)", input)
        _check_unit_interval("target", target)


def reduce_loss(loss: Tensor, reduction: str, weight: Tensor | None = None) -> Tensor:
    """Scale an elementwise loss by `weight`, then apply 'none', 'mean' or 'sum'.

    'mean' divides by the number of elements, not by the sum of the weights, as torch does.
    """
    if weight is not None:
        loss = loss * weight
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


# torch divides BCE's gradient by max((1 - p) p, 1e-12), never by 0; its 1e-12 is a C float,
# 9.999999960041972e-13, in every dtype (and 0 in float16, where it underflows)
GRAD_FLOOR = float(torch.tensor(1e-12, dtype=torch.float32))


class _ClampedBCE(torch.autograd.Function):
    """BCE per element, with torch's own backward rather than autograd's.

    Forward: (y - 1) max(log(1 - p), -100) - y max(log p, -100).
    Backward (torch's formula): dl/dp = (p - y) / max((1 - p) p, 1e-12), and
    dl/dy = -logit(p) = log(1 - p) - log p, unclamped. Autograd through the clamps would
    give nan at p = 0 or 1 and -y/p (up to -1e30 at p = 1e-30) below the floor.
    """

    @staticmethod
    def forward(ctx, p: Tensor, y: Tensor) -> Tensor:
        ctx.save_for_backward(p, y)
        log_p = torch.clamp(torch.log(p), min=LOG_CLAMP)
        log_1mp = torch.clamp(torch.log1p(-p), min=LOG_CLAMP)
        return (y - 1) * log_1mp - y * log_p

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        p, y = ctx.saved_tensors
        grad_p = grad_y = None
        if ctx.needs_input_grad[0]:
            grad_p = grad * (p - y) / torch.clamp((1 - p) * p, min=GRAD_FLOOR)
        if ctx.needs_input_grad[1]:
            grad_y = grad * -torch.logit(p)
        return grad_p, grad_y


def bce(
    input: Tensor, target: Tensor, weight: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    """BCE on probabilities, equal to F.binary_cross_entropy in value and gradient.

    The gradient is torch's formula everywhere, edges included: (p - y) / max((1 - p) p,
    1e-12) with respect to p, so at most |p - y| 1e12. Unlike torch, a weight that requires
    grad gets one (torch refuses).
    """
    check_bce_args(input, target, weight, reduction=reduction, probabilities=True)
    return reduce_loss(_ClampedBCE.apply(input, target), reduction, weight)


def log_sigmoid(x: Tensor) -> Tensor:
    """log(sigmoid(x)) without overflow: min(x, 0) - log1p(exp(-|x|))."""
    return torch.minimum(x, torch.zeros_like(x)) - torch.log1p(torch.exp(-x.abs()))


def bce_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    pos_weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """BCE on logits, equal to F.binary_cross_entropy_with_logits in value and gradient.

    Per element: w * [(1 - y) x - (1 + (p_w - 1) y) log sigmoid(x)], no clamp.
    """
    check_bce_args(input, target, weight, pos_weight, reduction, probabilities=False)
    log_sig = log_sigmoid(input)
    if pos_weight is not None:
        log_sig = log_sig * (1 + (pos_weight - 1) * target)
    loss = (1 - target) * input - log_sig
    return reduce_loss(loss, reduction, weight)


def naive_bce_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    pos_weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """The textbook -(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))): gives inf and nan."""
    check_bce_args(input, target, weight, pos_weight, reduction, probabilities=False)
    p = torch.sigmoid(input)
    pos = target * torch.log(p)
    if pos_weight is not None:
        pos = pos * pos_weight
    loss = -(pos + (1 - target) * torch.log(1 - p))
    return reduce_loss(loss, reduction, weight)
