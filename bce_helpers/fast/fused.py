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

Where the pass runs: on CUDA, the Triton kernels (bce_helpers.fast.fused_triton); on the CPU
(and MPS) the formulas of bce_helpers.fast.formulas through torch.compile, which inductor
fuses into one loop. Without a working compiler the formulas run eagerly, with a warning:
correct, not fused.
"""

from __future__ import annotations

import contextlib
import functools
import math
import types
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from bce_helpers.fast import fused_triton
from bce_helpers.fast.compiler import Compiled, compile_enabled, compiled, is_compiling
from bce_helpers.fast.formulas import computing_dtype, one_pass, target_gradient
from bce_helpers.fast.fused_triton import Periodic
from bce_helpers.losses import _check_unit_interval, check_bce_args


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
    # one size for x and y, said to the compiler: without duck sizing each has its own size
    # symbol, and inductor's loop over two sizes runs far slower than its loop over one
    torch._check(y.numel() == n)
    return one_pass(x, y, spread(w, n), spread(pw, n), reduction, need_grad, grad_scale)


COMPILE_OPTIONS = {
    # the C++ may do a multiply and an add as one instruction, rounded once
    "cpp.enable_floating_point_contract_flag": "fast",
    # the loss's formulas are longer than inductor's default for a value computed inside the
    # loop that consumes it (50 operations on the CPU): past that, the 'sum' losses would be
    # written to memory and summed in a second pass
    "realize_cpu_opcount_threshold": 200,
}

VariantKey = tuple[Any, ...]


def variant_key(
    flat: tuple[Tensor, Tensor, Periodic | None, Periodic | None, str, bool],
) -> VariantKey:
    """What a compiled graph of the flat pass (x, y, w, pw, reduction, need_grad) depends
    on, other than the sizes: the dtypes, the reduction, the gradient or not, each weight's
    kind, and the sizes that dynamo specializes (1, and a periodic weight's inner stride of
    1)."""
    x, y, w, pw, reduction, need_grad = flat

    def kind(weight: Periodic | None) -> tuple[Any, ...] | None:
        if weight is None:
            return None
        return weight.values.dtype, weight.period == 1, weight.inner == 1

    return (x.device.type, x.dtype, y.dtype, x.numel() == 1, kind(w), kind(pw), reduction,
            need_grad)  # fmt: skip


@functools.cache
def compiled_pass(key: VariantKey) -> Compiled:
    """The flat pass under torch.compile for one variant, with sizes dynamic: one graph serves
    every size and rank of that variant.

    Dynamo keeps its graphs, and counts recompilations against its limit, per code object.
    Each variant gets a code object of its own (a copy of _flat_one_pass's, named after
    the variant), so a variant's graph is found among its own guards only and many
    variants never reach the recompile limit of one frame."""
    code = _flat_one_pass.__code__
    name = "_flat_one_pass_" + "_".join(
        str(part).removeprefix("torch.").replace(" ", "").replace("'", "") for part in key
    )
    copy = types.FunctionType(
        code.replace(co_name=name), _flat_one_pass.__globals__, name, _flat_one_pass.__defaults__
    )
    return compiled(copy, "fused_bce_with_logits", dynamic=True, options=COMPILE_OPTIONS)


@contextlib.contextmanager
def compile_settings() -> Iterator[None]:
    """Dynamo's settings for the compiled pass: no "duck sizing" (a weight as long as the
    input by chance would be a second graph), and the formulas' float constants stay
    constants in the C++ (dynamic=True would otherwise pass each as a graph input, loaded
    again for every vector)."""
    dynamo_settings, shape_settings = _settings_patches()
    with dynamo_settings, shape_settings:
        yield


@functools.cache
def _settings_patches() -> tuple[contextlib.AbstractContextManager, ...]:
    # made once: a config patch builds a class when made, and one patch object can be
    # entered again and again (it keeps its prior values per context)
    return (
        torch._dynamo.config.patch(specialize_float=True),
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
    """Pick the path: the Triton kernel, the compiled flat formulas, or eager formulas.
    Returns the loss, the gradient (or None) and the bad-target flag (None where the pass
    folds it into NaN losses)."""
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
    else:
        grad_scale = None
        if need_grad and reduction == "mean":
            grad_scale = torch.full(
                (), 1 / x.numel(), dtype=computing_dtype(x.dtype), device=x.device
            )
        # below autograd, as inside the custom op: eager calls (through the autograd.Function)
        # and calls from a compiled model's graph then meet one set of dispatch keys, which
        # dynamo's guards check, and share one graph
        with compile_settings(), torch._C._AutoDispatchBelowADInplaceOrView():
            loss, grad, bad = compiled_pass(variant_key(flat))(*flat, grad_scale)
    if reduction == "none":
        loss = loss.view(x.shape)
    return loss, None if grad is None else grad.view(x.shape), bad


# each path pass_path names, and what it does, in a learner's words
PASS_PATHS = {
    "a Triton kernel": (
        "Triton kernels written for this loss run the formulas on the GPU in one pass over "
        "memory, the loss summed inside the pass"
    ),
    "torch.compile (inductor)": (
        "torch.compile turns the formulas into one loop (inductor fuses their operations): "
        "x and y are read once, the gradient written once"
    ),
    "eager formulas (no compiler)": (
        "without a working compiler the same formulas run eagerly, one torch operation at a "
        "time: correct, not fused (each operation is a pass over memory)"
    ),
}


def pass_path(dtype: torch.dtype, device: torch.device) -> str:
    """Which path the unweighted pass takes for inputs of this dtype on this device, in words
    (a key of PASS_PATHS)."""
    probe = torch.empty(0, dtype=dtype, device=device)
    if fused_triton.usable(probe):
        return "a Triton kernel"
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
        if is_compiling() or type(grad_output) is not Tensor:
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
    if _op is not None and is_compiling():
        return _op(input, target, weight, pos_weight, reduction, need_grad)[0]
    return _FusedBCEWithLogits.apply(input, target, weight, pos_weight, reduction, need_grad)
