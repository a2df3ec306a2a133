"""The fused BCE pass as Triton kernels: CUDA tensors, or CPU tensors under TRITON_INTERPRET=1.

A persistent grid: a fixed number of programs (a few per multiprocessor) walks the input in
blocks, so the launch does not grow with the size. Each program reads its blocks' logits and
targets once, writes their gradient (when asked) and either their losses ('none') or one
partial sum; one small finishing program then adds the partial sums in a fixed order and
writes the loss in the input's dtype (the result does not depend on scheduling). Nothing is
read back to the host: a target outside [0, 1] or NaN makes its own loss and gradient NaN,
and so the reduced loss. Offsets are 32-bit below 2^31 elements; a periodic weight's index
takes one division per block in the program's scalars and 32-bit divisions per element.
Arithmetic is in float32 for every input dtype, rounded once on store. TRITON_INTERPRET=1
must be set before this module is imported (triton decides at decoration time); tests run
it so in a subprocess.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # a torch without Triton: the compiled or eager path is used
    triton = None


class Periodic(NamedTuple):
    """A weight laid out along the flattened input: element i uses values[(i // inner) % period]."""

    values: Tensor
    inner: int
    period: int


class Variant(NamedTuple):
    """A launch configuration of the pass: elements per block, warps, and programs per
    multiprocessor without weights and with them (as many as its registers hold at once)."""

    block: int
    warps: int
    programs_per_sm: int
    weighted_programs_per_sm: int


# with weights a large block needs so many registers that one program fills a
# multiprocessor, so weights take the small blocks
SMALL, LARGE = Variant(1024, 4, 8, 6), Variant(4096, 8, 2, 1)
VARIANTS = {"small": SMALL, "large": LARGE}
LARGE_FROM = 2**22 + 1
# offsets are 32-bit while every block's end stays below 2^31; past that 64-bit
INT32_LIMIT = 2**31 - 1
# under the interpreter a few programs, so each walks several blocks (the loop is tested)
INTERPRETER_PROGRAMS = 3
FINISH_BLOCK = 1024
INTERPRETING = os.environ.get("TRITON_INTERPRET") == "1"


def usable(x: Tensor) -> bool:
    """Whether x's pass runs as a Triton kernel: CUDA (or the interpreter), 32/16-bit floats."""
    if triton is None or x.dtype == torch.float64:
        return False
    return x.is_cuda or (INTERPRETING and x.device.type == "cpu")


_forced: Variant | None = None


def variant_for(n: int, weighted: bool = False) -> Variant:
    """The launch configuration: small blocks up to 2^22 elements or with weights, else large
    (or the one forced_variant sets)."""
    if _forced is not None:
        return _forced
    return LARGE if n >= LARGE_FROM and not weighted else SMALL


@contextlib.contextmanager
def forced_variant(variant: Variant) -> Iterator[None]:
    """Every pass in the block launches `variant`: tests and benchmarks compare the two."""
    global _forced
    before, _forced = _forced, variant
    try:
        yield
    finally:
        _forced = before


@functools.cache
def _multiprocessors(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def programs(device: torch.device, blocks: int, variant: Variant, weighted: bool = False) -> int:
    """Programs in the persistent grid: those that run at once, never more than blocks."""
    if device.type != "cuda":
        return max(1, min(blocks, INTERPRETER_PROGRAMS))
    per_sm = variant.weighted_programs_per_sm if weighted else variant.programs_per_sm
    return max(1, min(blocks, _multiprocessors(device) * per_sm))


if triton is not None:

    @triton.jit
    def _log1p_series(t):
        # log1p(t) = 2 atanh(s), s = t / (2 + t): see formulas.log1p_series and its
        # ATANH_SERIES_FLOAT32
        s = t / (2.0 + t)
        z = s * s
        series = z * (
            0.3333320656053216
            + z * (0.20010849882540158 + z * (0.1399956457508059 + z * 0.1401225877733188))
        )
        return 2.0 * s + 2.0 * s * series

    @triton.jit
    def _periodic_index(start, lanes, inner, period):
        # (start + lane) // inner % period: start's division once per block, then the lane's
        # part, below inner + BLOCK, and the sum, below period + BLOCK, in the lanes' width
        q0 = start // inner
        base = (q0 % period).to(lanes.dtype)
        t = (start - q0 * inner).to(lanes.dtype) + lanes
        return (base + t // inner) % period

    @triton.jit
    def _bce_pass_kernel(
        x_ptr,
        y_ptr,
        w_ptr,
        pw_ptr,
        grad_ptr,
        loss_ptr,
        n,
        blocks,
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
        WIDE: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        lanes = tl.arange(0, BLOCK)
        if WIDE:
            lanes = lanes.to(tl.int64)
        total = tl.zeros([BLOCK], dtype=tl.float32)  # each lane's share of the partial sum
        for block in range(tl.program_id(0), blocks, tl.num_programs(0)):
            start = block.to(tl.int64) * BLOCK if WIDE else block * BLOCK
            offs = start + lanes
            mask = offs < n
            x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
            y = tl.load(y_ptr + offs, mask=mask, other=0.0).to(tl.float32)
            # outside [0, 1], or NaN: its loss and gradient become NaN, no flag to read
            bad = ~((y >= 0.0) & (y <= 1.0))
            e = tl.exp(-tl.abs(x))
            log_sig = tl.minimum(x, 0.0) - _log1p_series(e)
            if HAS_PW:
                pw_index = _periodic_index(start, lanes, pw_inner, pw_period)
                pw = tl.load(pw_ptr + pw_index, mask=mask, other=1.0).to(tl.float32)
                loss = (1.0 - y) * x - (1.0 + (pw - 1.0) * y) * log_sig
            else:
                loss = (1.0 - y) * x - log_sig
            if HAS_W:
                w_index = _periodic_index(start, lanes, w_inner, w_period)
                w = tl.load(w_ptr + w_index, mask=mask, other=0.0).to(tl.float32)
                loss = loss * w
            loss = tl.where(bad, float("nan"), loss)
            if PER_ELEMENT:
                tl.store(loss_ptr + offs, loss.to(loss_ptr.dtype.element_ty), mask=mask)
            else:
                total += tl.where(mask, loss, 0.0)
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
                g = tl.where(bad, float("nan"), g * grad_scale)
                tl.store(grad_ptr + offs, g.to(grad_ptr.dtype.element_ty), mask=mask)
        if not PER_ELEMENT:
            tl.store(loss_ptr + tl.program_id(0), tl.sum(total, axis=0) * loss_scale)

    @triton.jit
    def _finish_kernel(partials_ptr, out_ptr, count, BLOCK: tl.constexpr):
        # one program: the partial sums in a fixed order, the loss in the output's dtype
        total = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(0, count, BLOCK):
            offs = start + tl.arange(0, BLOCK)
            total += tl.load(partials_ptr + offs, mask=offs < count, other=0.0)
        tl.store(out_ptr, tl.sum(total, axis=0).to(out_ptr.dtype.element_ty))

    @triton.jit
    def _scale_kernel(g_ptr, s_ptr, n, blocks, WIDE: tl.constexpr, BLOCK: tl.constexpr):
        # g *= s on the device; for s == 1 each program reads s and ends
        s = tl.load(s_ptr).to(tl.float32)
        if s != 1.0:
            lanes = tl.arange(0, BLOCK)
            if WIDE:
                lanes = lanes.to(tl.int64)
            for block in range(tl.program_id(0), blocks, tl.num_programs(0)):
                start = block.to(tl.int64) * BLOCK if WIDE else block * BLOCK
                offs = start + lanes
                mask = offs < n
                g = tl.load(g_ptr + offs, mask=mask, other=0.0)
                tl.store(g_ptr + offs, (g.to(tl.float32) * s).to(g.dtype), mask=mask)


def forward(
    x: Tensor,
    y: Tensor,
    w: Periodic | None,
    pw: Periodic | None,
    reduction: str,
    need_grad: bool,
    variant: Variant | None = None,
) -> tuple[Tensor, Tensor | None]:
    """The fused pass over flat x and y: (loss, gradient or None); bad targets give NaN."""
    n = x.numel()
    weighted = w is not None or pw is not None
    variant = variant or variant_for(n, weighted)
    blocks = triton.cdiv(n, variant.block)
    grid = programs(x.device, blocks, variant, weighted)
    per_element = reduction == "none"
    if per_element:
        loss = torch.empty_like(x)
    else:  # one float32 partial sum per program
        loss = torch.empty(grid, device=x.device, dtype=torch.float32)
    grad = torch.empty_like(x) if need_grad else None
    scale = 1.0 / n if reduction == "mean" else 1.0
    unused = Periodic(x, 1, 1)  # a pointer the kernel never reads
    _bce_pass_kernel[(grid,)](
        x,
        y,
        (w or unused).values,
        (pw or unused).values,
        grad if grad is not None else x,
        loss,
        n,
        blocks,
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
        WIDE=n + variant.block > INT32_LIMIT,
        BLOCK=variant.block,
        num_warps=variant.warps,
    )
    if not per_element:
        total = torch.empty((), device=x.device, dtype=x.dtype)
        _finish_kernel[(1,)](loss, total, grid, BLOCK=FINISH_BLOCK, num_warps=4)
        loss = total
    return loss, grad


def scale_in_place(grad: Tensor, grad_output: Tensor) -> None:
    """grad *= grad_output (a one-element tensor), decided on the device: nothing moves for 1."""
    n = grad.numel()
    blocks = triton.cdiv(n, LARGE.block)
    _scale_kernel[(programs(grad.device, blocks, LARGE),)](
        grad,
        grad_output.reshape(1),
        n,
        blocks,
        WIDE=n + LARGE.block > INT32_LIMIT,
        BLOCK=LARGE.block,
        num_warps=LARGE.warps,
    )
