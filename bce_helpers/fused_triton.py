"""The fused BCE pass as Triton kernels: CUDA tensors, or CPU tensors under TRITON_INTERPRET=1.

One program reads BLOCK logits and targets, writes their gradient (when asked), and either
writes their losses ('none') or one partial sum (then a single torch.sum adds the
partials, in a fixed order: the result does not depend on scheduling). A target outside
[0, 1] or NaN sets a flag with one masked atomic per block. Arithmetic is in float32 for
every input dtype, rounded once on store. TRITON_INTERPRET=1 must be set before this module
is imported (triton decides at decoration time); tests run it so in a subprocess.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # a torch without Triton: the compiled or eager path is used
    triton = None

# the minimax fit of atanh(s)/s - 1 = z/3 + z^2/5 + ... (z = s^2 <= 1/9) in 4 terms,
# also used by fused.log1p_series
ATANH_SERIES_FLOAT32 = (
    0.3333320656053216,
    0.20010849882540158,
    0.1399956457508059,
    0.1401225877733188,
)


class Periodic(NamedTuple):
    """A weight laid out along the flattened input: element i uses values[(i // inner) % period]."""

    values: Tensor
    inner: int
    period: int


SMALL_BLOCK, LARGE_BLOCK = 1024, 4096  # elements per program; the larger past 2^22
INTERPRETING = os.environ.get("TRITON_INTERPRET") == "1"


def usable(x: Tensor) -> bool:
    """Whether x's pass runs as a Triton kernel: CUDA (or the interpreter), 32/16-bit floats."""
    if triton is None or x.dtype == torch.float64:
        return False
    return x.is_cuda or (INTERPRETING and x.device.type == "cpu")


if triton is not None:

    @triton.jit
    def _log1p_series(t):
        # log1p(t) = 2 atanh(s), s = t / (2 + t): see fused.log1p_series
        s = t / (2.0 + t)
        z = s * s
        series = z * (
            0.3333320656053216
            + z * (0.20010849882540158 + z * (0.1399956457508059 + z * 0.1401225877733188))
        )
        return 2.0 * s + 2.0 * s * series

    @triton.jit
    def _bce_pass_kernel(
        x_ptr,
        y_ptr,
        w_ptr,
        pw_ptr,
        grad_ptr,
        loss_ptr,
        bad_ptr,
        n,
        w_inner,
        w_period,
        pw_inner,
        pw_period,
        loss_scale,
        grad_scale,
        HAS_W: tl.constexpr,
        HAS_PW: tl.constexpr,
        NEED_GRAD: tl.constexpr,
        PER_ELEMENT: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        pid = tl.program_id(0)
        offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        y = tl.load(y_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        e = tl.exp(-tl.abs(x))
        log_sig = tl.minimum(x, 0.0) - _log1p_series(e)
        if HAS_PW:
            pw = tl.load(pw_ptr + (offs // pw_inner) % pw_period, mask=mask, other=1.0)
            pw = pw.to(tl.float32)
            loss = (1.0 - y) * x - (1.0 + (pw - 1.0) * y) * log_sig
        else:
            loss = (1.0 - y) * x - log_sig
        if HAS_W:
            w = tl.load(w_ptr + (offs // w_inner) % w_period, mask=mask, other=0.0)
            w = w.to(tl.float32)
            loss = loss * w
        if PER_ELEMENT:
            tl.store(loss_ptr + offs, loss.to(loss_ptr.dtype.element_ty), mask=mask)
        else:
            tl.store(loss_ptr + pid, tl.sum(tl.where(mask, loss, 0.0), axis=0) * loss_scale)
        bad = mask & ~((y >= 0.0) & (y <= 1.0))  # also true for NaN
        any_bad = tl.max(bad.to(tl.int32), axis=0)
        tl.atomic_max(bad_ptr, any_bad, mask=any_bad > 0)
        if NEED_GRAD:
            r = 1.0 / (1.0 + e)
            sig = tl.where(x >= 0.0, r, e * r)
            if HAS_PW:
                positive = pw * y
                g = (positive + 1.0 - y) * sig - positive
            else:
                g = sig - y
            if HAS_W:
                g = g * w
            g = g * grad_scale
            tl.store(grad_ptr + offs, g.to(grad_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def _scale_kernel(g_ptr, s_ptr, n, BLOCK: tl.constexpr):
        pid = tl.program_id(0)
        offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        s = tl.load(s_ptr + offs * 0).to(tl.float32)  # the one value, broadcast (cached)
        mask = (offs < n) & (s != 1.0)  # s == 1: g is neither read nor written
        g = tl.load(g_ptr + offs, mask=mask, other=0.0)
        tl.store(g_ptr + offs, (g.to(tl.float32) * s).to(g.dtype), mask=mask)


def forward(
    x: Tensor,
    y: Tensor,
    w: Periodic | None,
    pw: Periodic | None,
    reduction: str,
    need_grad: bool,
) -> tuple[Tensor, Tensor | None, Tensor]:
    """The fused pass over flat x and y: (loss, gradient or None, bad-target flag)."""
    n = x.numel()
    block = LARGE_BLOCK if n > 2**22 else SMALL_BLOCK
    programs = triton.cdiv(n, block)
    per_element = reduction == "none"
    loss_dtype = x.dtype if per_element else torch.float32  # partial sums in float32
    loss = torch.empty(n if per_element else programs, device=x.device, dtype=loss_dtype)
    grad = torch.empty_like(x) if need_grad else None
    bad = torch.zeros(1, device=x.device, dtype=torch.int32)
    scale = 1.0 / n if reduction == "mean" else 1.0
    unused = Periodic(x, 1, 1)  # a pointer the kernel never reads
    _bce_pass_kernel[(programs,)](
        x,
        y,
        (w or unused).values,
        (pw or unused).values,
        grad if grad is not None else x,
        loss,
        bad,
        n,
        (w or unused).inner,
        (w or unused).period,
        (pw or unused).inner,
        (pw or unused).period,
        scale,
        scale,
        HAS_W=w is not None,
        HAS_PW=pw is not None,
        NEED_GRAD=need_grad,
        PER_ELEMENT=per_element,
        BLOCK=block,
        num_warps=8 if block == LARGE_BLOCK else 4,
    )
    if not per_element:
        loss = loss.sum().to(x.dtype)
    return loss, grad, bad[0] > 0


def scale_in_place(grad: Tensor, grad_output: Tensor) -> None:
    """grad *= grad_output (a one-element tensor), with no memory moved when it is 1."""
    n = grad.numel()
    _scale_kernel[(triton.cdiv(n, LARGE_BLOCK),)](
        grad, grad_output.reshape(1), n, BLOCK=LARGE_BLOCK, num_warps=8
    )
