"""fused_bce_with_logits: BCE on logits in one pass over memory, forward and gradient.

BCE does a few operations per element, so its speed is set by memory traffic. Eager torch
makes a pass over memory per operation, forward and backward. Here, when the input requires
grad, the forward computes the loss *and* the per-element gradient in the same pass: it
reads the logits and the targets once and writes the gradient once (12 bytes per float32
element, against at least 20 for a forward and a separate backward). What it holds between
forward and backward is that gradient: one tensor of the input's size, nothing else (and the
input and weights when the target requires grad). Called eagerly, the backward only scales
it by the upstream gradient, in place, and moves no memory when that gradient is 1 (the usual
`loss.backward()`), decided on the device.

The pass is a custom op, `torch.ops.bce_helpers.fused_bce_with_logits`, registered with
torch.library with a fake (meta) implementation and autograd: torch.compile(fullgraph=True)
of a model that calls the loss keeps it in its graph (its backward then multiplies the kept
gradient by the upstream one out of place), and nothing in it waits for the device, so a
CUDA graph can record it. Called eagerly, the loss goes through an autograd.Function with the
same forward and backward, which costs the host less per call than the op's dispatch.

Where the pass runs: on CUDA, a Triton kernel (bce_helpers.fast.fused_triton); on the CPU, for
float32 without weights, a C kernel built at first use (bce_helpers.fast.fused_cpu); elsewhere
(weights, float64, 16-bit types, MPS) the same formulas through torch.compile, which
inductor fuses into one loop. Without a working compiler the formulas run eagerly, with a
warning: correct, not fused.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from bce_helpers.fast import fused_cpu, fused_triton
from bce_helpers.fast.compiler import compile_enabled, compiled
from bce_helpers.fast.fused_triton import Periodic
from bce_helpers.losses import _check_unit_interval, check_bce_args

# atanh(s) / s = 1 + z/3 + z^2/5 + ... with z = s^2 at most 1/9: float64 takes the
# series' first 15 terms; lower precisions a minimax fit of 4 terms (relative error 4.5e-9,
# below float32's rounding; fitted by linear programming on a grid of z in [0, 1/9]).
# fused_triton's kernel uses the float32 coefficients too.
ATANH_SERIES = {
    torch.float64: tuple(1 / (2 * k + 1) for k in range(1, 16)),
    torch.float32: fused_triton.ATANH_SERIES_FLOAT32,
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


# torch.compiler.is_compiling is torch >= 2.3's name
_is_compiling = getattr(torch.compiler, "is_compiling", None) or torch._dynamo.is_compiling


def _compiling_for_cpu(t: Tensor) -> bool:
    # eagerly (the fallbacks, and MPS, which has no float64) the formulas use torch's own sum
    return t.device.type == "cpu" and _is_compiling()


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
        # 2e-7 to 2e-6 off over 2^16-2^20 elements on one thread (eager torch's sum is not)
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


def spread(weight: Periodic | None, n: int) -> Tensor | None:
    """A periodic weight along a flattened input of n elements (a scalar stays one)."""
    if weight is None or weight.period == 1:
        return None if weight is None else weight.values
    index = torch.arange(n, device=weight.values.device) // weight.inner % weight.period
    return weight.values[index]


def _flat_one_pass(
    x: Tensor,
    y: Tensor,
    w: Periodic | None,
    pw: Periodic | None,
    reduction: str,
    need_grad: bool,
    grad_scale: Tensor | None = None,
) -> tuple[Tensor, Tensor | None, Tensor]:
    n = x.numel()
    return one_pass(x, y, spread(w, n), spread(pw, n), reduction, need_grad, grad_scale)


COMPILE_OPTIONS = {
    # the C++ may do a multiply and an add as one instruction, rounded once
    "cpp.enable_floating_point_contract_flag": "fast",
    # the loss's formulas are longer than inductor's default for a value computed inside the
    # loop that consumes it (50 operations on the CPU): past that, the 'sum' losses were
    # written to memory and summed in a second pass
    "realize_cpu_opcount_threshold": 200,
}
# 1-D inputs with dynamic sizes: one compiled kernel serves every rank and shape
_compiled_flat_one_pass = compiled(
    _flat_one_pass, "fused_bce_with_logits", dynamic=True, options=COMPILE_OPTIONS
)
# the variants (reduction, dtype, weights or not, gradient or not) are each a compiled
# graph of the same function: more than dynamo's default limit of 8, all bounded
RECOMPILE_LIMIT = 64


@contextlib.contextmanager
def compile_settings() -> Iterator[None]:
    """Dynamo's settings for the compiled pass: a bounded number of graphs, each variant once.

    No "duck sizing" (a weight as long as the input by chance would be a new graph), and the
    formulas' float constants stay constants in the C++ (dynamic=True would otherwise pass
    each as a graph input, loaded again for every vector)."""
    dynamo_settings, shape_settings = _settings_patches()
    with dynamo_settings, shape_settings:
        yield


@functools.cache
def _settings_patches() -> tuple[contextlib.AbstractContextManager, ...]:
    # made once: a config patch builds a class when made (about 25 us a call at small
    # sizes), and one patch object can be entered again and again (it keeps its prior
    # values per context)
    return (
        torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT, specialize_float=True),
        torch.fx.experimental._config.patch(use_duck_shape=False),
    )


def periodic(t: Tensor, shape: torch.Size) -> Periodic | None:
    """t, broadcast to `shape`, as a Periodic weight along the flattened input; None when
    t's broadcast is not of that form.

    That form covers a scalar, a per-class [C] weight on [..., C], and [C, 1, 1] on
    [B, C, H, W]: every broadcast whose non-1 dimensions are next to each other."""
    dims = [1] * (len(shape) - t.dim()) + list(t.shape)
    kept = [i for i, d in enumerate(dims) if d != 1]
    if not kept:
        return Periodic(_flat(t), 1, 1)
    if kept[-1] - kept[0] + 1 != len(kept):
        return None  # an exotic broadcast, such as [C, 1, W]
    inner = math.prod(shape[kept[-1] + 1 :])
    return Periodic(_flat(t), inner, t.numel())


def _flat(t: Tensor) -> Tensor:
    # contiguous, with no lazy negation: a 1-D view with strides (x[::2], an expanded target)
    # stays a view under reshape, and a negated view (z.conj().imag) keeps its memory as it
    # was; the kernels read their inputs as plain arrays
    return t.reshape(-1).detach().resolve_neg().contiguous()


def _forward(
    x: Tensor,
    y: Tensor,
    weight: Tensor | None,
    pos_weight: Tensor | None,
    reduction: str,
    need_grad: bool,
) -> tuple[Tensor, Tensor | None, Tensor | bool | None]:
    """Pick the path: the Triton kernel, the C kernel, the compiled flat formulas, or eager
    formulas. Returns the loss, the gradient (or None) and the bad-target flag (None where the
    pass folds it into NaN losses)."""
    w = None if weight is None else periodic(weight, x.shape)
    pw = None if pos_weight is None else periodic(pos_weight, x.shape)
    exotic = (weight is not None and w is None) or (pos_weight is not None and pw is None)
    if exotic or x.numel() == 0:
        return one_pass(x, y, weight, pos_weight, reduction, need_grad)
    # flat 1-D tensors with no view base, so the compiled graph does not depend on the rank
    flat = (_flat(x), _flat(y), w, pw, reduction, need_grad)
    if fused_triton.usable(x):
        loss, grad = fused_triton.forward(*flat)
        bad = None
    elif weight is None and pos_weight is None and fused_cpu.usable(x, y):
        loss, grad, bad = fused_cpu.forward(flat[0], flat[1], reduction, need_grad)
    else:
        grad_scale = None
        if need_grad and reduction == "mean":
            grad_scale = torch.full(
                (), 1 / x.numel(), dtype=computing_dtype(x.dtype), device=x.device
            )
        with compile_settings():
            loss, grad, bad = _compiled_flat_one_pass(*flat, grad_scale)
    if reduction == "none":
        loss = loss.view(x.shape)
    return loss, None if grad is None else grad.view(x.shape), bad


def pass_path(dtype: torch.dtype, device: torch.device) -> str:
    """Which path the unweighted pass takes for inputs of this dtype on this device, in words."""
    probe = torch.empty(0, dtype=dtype, device=device)
    if fused_triton.usable(probe):
        return "a Triton kernel"
    if fused_cpu.usable(probe):
        return "a C kernel (built at first use)"
    return "torch.compile (inductor)" if compile_enabled() else "eager formulas (no compiler)"


def scale_in_place(grad: Tensor, grad_output: Tensor) -> None:
    """grad *= grad_output, and no memory moved when grad_output is a scalar 1."""
    if grad_output.numel() != 1:
        grad.mul_(grad_output)
    elif fused_triton.usable(grad):
        fused_triton.scale_in_place(grad, grad_output)  # the test for 1 runs on the GPU
    elif grad.device.type == "cpu":
        if grad_output.item() != 1:  # on the CPU, reading the value costs no wait
            grad.mul_(grad_output)
    else:
        grad.mul_(grad_output)


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


def _pass(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None,
    pos_weight: Tensor | None,
    reduction: str,
    need_grad: bool,
) -> tuple[Tensor, Tensor]:
    """The forward of the loss: (loss, gradient, or an empty tensor where none is needed)."""
    loss, grad, bad = _forward(input, target, weight, pos_weight, reduction, need_grad)
    if input.device.type == "cpu":  # the flag is in host memory: reading it costs no wait
        if bad is None:  # the Triton kernel (interpreted) folds it into NaN losses
            bad = loss.isnan().any()
        if bool(bad):
            _check_unit_interval("target", target)  # raises, naming the first bad value
    return loss, input.new_empty(0) if grad is None else grad


def _keep(
    ctx: Any,
    input: Tensor,
    target: Tensor,
    weight: Tensor | None,
    pos_weight: Tensor | None,
    reduction: str,
    grad: Tensor | None,
) -> None:
    """Keep what the backward needs: the gradient, and the input and weights for a target
    that requires grad."""
    ctx.set_materialize_grads(False)
    ctx.grad = grad
    ctx.reduction = reduction
    ctx.target_dtype = target.dtype
    if ctx.needs_input_grad[1]:
        ctx.save_for_backward(input, weight, pos_weight)


def _backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, Tensor | None]:
    """The input's and the target's gradients from what the forward kept."""
    grad_input = grad_target = None
    if ctx.needs_input_grad[0]:
        grad, ctx.grad = ctx.grad, None
        if grad is None:
            raise RuntimeError(
                "fused_bce_with_logits: backward ran twice through the same loss (its "
                "gradient is computed once, in the forward): call the loss again instead"
            )
        if _is_compiling() or type(grad_output) is not Tensor:
            # traced (fake or functional tensors) or a tensor subclass: the product, out of
            # place, for the compiler to own; no mutation of a tensor the graph saved
            grad_input = grad * grad_output
        else:
            scale_in_place(grad, grad_output)
            grad_input = grad
    if ctx.needs_input_grad[1]:
        x, weight, pos_weight = ctx.saved_tensors
        grad_target = target_gradient(
            x, weight, pos_weight, ctx.reduction, grad_output, ctx.target_dtype
        )
    return grad_input, grad_target


OP_NAME = "bce_helpers::fused_bce_with_logits"
_custom_op = getattr(torch.library, "custom_op", None)  # torch >= 2.4


if _custom_op is not None:
    # the op runs _pass itself (its schema comes from _pass's annotations)
    _op = _custom_op(OP_NAME, _pass, mutates_args=())

    @_op.register_fake
    def _op_fake(input, target, weight, pos_weight, reduction, need_grad):
        loss = input.new_empty(input.shape if reduction == "none" else ())
        return loss, torch.empty_like(input) if need_grad else input.new_empty(0)

    def _op_setup_context(ctx, inputs, output):
        input, target, weight, pos_weight, reduction, need_grad = inputs
        ctx.mark_non_differentiable(output[1])
        _keep(ctx, input, target, weight, pos_weight, reduction, output[1] if need_grad else None)

    def _op_backward(ctx, grad_output, _grad_of_grad):
        return (*_backward(ctx, grad_output), None, None, None, None)

    _op.register_autograd(_op_backward, setup_context=_op_setup_context)
else:  # an older torch: the autograd.Function below serves compiled code too (with a break)
    _op = None


class _FusedBCEWithLogits(torch.autograd.Function):
    """The op's forward and backward for eager calls: less host time per call than a dispatch."""

    @staticmethod
    def forward(ctx, input, target, weight, pos_weight, reduction, need_grad):
        loss, grad = _pass(input, target, weight, pos_weight, reduction, need_grad)
        _keep(ctx, input, target, weight, pos_weight, reduction, grad if need_grad else None)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        return (*_backward(ctx, grad_output), None, None, None, None)


def _check_devices(input: Tensor, **others: Tensor | None) -> None:
    for name, t in others.items():
        if t is not None and t.device != input.device:
            raise ValueError(
                f"{name} is on {t.device} but input is on {input.device}: "
                "put every tensor of the loss on one device"
            )


def fused_bce_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    pos_weight: Tensor | None = None,
    reduction: str = "mean",
    check_targets: bool = False,
) -> Tensor:
    """bce_with_logits whose forward also computes the gradient, in one pass over memory.

    Same arguments, values and gradients (input and target) as
    F.binary_cross_entropy_with_logits (within float32's rounding; 16-bit inputs are computed
    in float32 and rounded once). The gradient is computed only where one can be needed
    (grad enabled and input requiring grad). Between forward and backward it holds one tensor
    of the input's size, the gradient; an eager backward scales it in place (nothing to do for
    an upstream gradient of 1) and can run once per call.

    Targets outside [0, 1] or NaN: on the CPU the pass's own flag raises ValueError (naming
    the target and its first bad value) before anything is returned. On a GPU no call waits
    for the device: a bad target makes its loss and its gradient NaN, and so the reduced loss;
    check_targets=True checks them first on any device and raises the same ValueError, which
    waits for the GPU (and breaks a torch.compile graph): a checking mode for debugging. A
    weight or pos_weight must not require grad.
    """
    check_bce_args(
        input, target, weight, pos_weight, reduction, probabilities=False, check_values=False
    )
    _check_devices(input, target=target, weight=weight, pos_weight=pos_weight)
    for name, t in (("weight", weight), ("pos_weight", pos_weight)):
        if t is not None and t.requires_grad:
            raise ValueError(
                f"{name} requires grad, but fused_bce_with_logits differentiates input and "
                "target only: use bce_with_logits"
            )
    if check_targets:
        _check_unit_interval("target", target)
    need_grad = input.requires_grad and torch.is_grad_enabled()
    if _op is not None and _is_compiling():
        return _op(input, target, weight, pos_weight, reduction, need_grad)[0]
    return _FusedBCEWithLogits.apply(input, target, weight, pos_weight, reduction, need_grad)
