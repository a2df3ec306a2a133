"""The fused loss's Triton kernels against a float64 reference: both launch variants, the
persistent loop, weights, 16-bit types, the upstream gradient and bad targets, under Triton's
interpreter here and on CUDA in the GPU check; the kernels compiled for an H100 (sm_90)."""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bce_helpers.fast import fused_triton
from bce_helpers.fast.fused import fused_bce_with_logits

ROOT = Path(__file__).resolve().parents[3]
# relative to the largest reference value: float32 partial sums, and 16-bit values rounded
# once (bfloat16 keeps 8 bits) against float64 on the same rounded inputs
RTOL = {torch.float32: 2e-6, torch.bfloat16: 8e-3, torch.float16: 1e-3}


def assert_relative(ours: torch.Tensor, ref: torch.Tensor, rtol: float, what: str) -> None:
    """|ours - ref| <= rtol * max |ref| everywhere (a zero where ref is not fails)."""
    assert ours.shape == ref.shape, what
    error = (ours.double() - ref).abs().max().item() if ref.numel() else 0.0
    scale = ref.abs().max().item() if ref.numel() else 0.0
    assert error <= rtol * scale, f"{what}: off by {error:.3g}, {error / scale:.3g} of {scale:.3g}"


def check_triton_case(x, y, weight=None, pos_weight=None, reduction="mean", upstream=1.7):
    """Loss and input gradient of the fused loss against float64 torch on the same values."""
    rtol = RTOL[x.dtype]
    x1 = x.clone().requires_grad_()
    ours = fused_bce_with_logits(x1, y, weight, pos_weight, reduction)
    x64 = x.double().requires_grad_()
    as64 = [None if t is None else t.double() for t in (weight, pos_weight)]
    ref = F.binary_cross_entropy_with_logits(
        x64, y.double(), as64[0], pos_weight=as64[1], reduction=reduction
    )
    assert ours.dtype == x.dtype
    assert_relative(ours, ref.detach(), rtol, f"loss, {reduction}, n={x.numel()}")
    grad_out = torch.rand_like(ref) if reduction == "none" else torch.tensor(upstream).double()
    ours.backward(grad_out.to(ours.dtype))
    ref.backward(grad_out)
    assert x1.grad.dtype == x.dtype
    assert_relative(x1.grad, x64.grad, rtol, f"gradient, {reduction}, n={x.numel()}")


def run_triton_cases(device: str) -> None:
    """The fused loss's Triton path on `device` (CUDA, or the CPU under TRITON_INTERPRET=1):
    both variants, one program, a partial block, more blocks than programs (the persistent
    loop), every reduction, periodic weights, 16-bit types, scaling, bad targets."""
    assert fused_triton.usable(torch.zeros(1, device=device)), "the Triton path must be tested"
    g = torch.Generator().manual_seed(5)

    def on(*tensors):
        return [t.to(device) for t in tensors]

    for variant in fused_triton.VARIANTS.values():
        with fused_triton.forced_variant(variant):
            programs = fused_triton.programs(torch.device(device), 10**9, variant)
            for n in (1, 1000, programs * variant.block + 5):
                x, y = on(torch.randn(n, generator=g) * 8, torch.rand(n, generator=g))
                for reduction in ("mean", "sum", "none"):
                    check_triton_case(x, y, reduction=reduction)
            shape = (6, 4, 5)
            x, y = on(torch.randn(shape, generator=g) * 8, torch.randint(0, 2, shape, generator=g))
            w, pw = on(torch.rand(5, generator=g), 3 * torch.rand(4, 1, generator=g))
            check_triton_case(x, y.float(), w, pw, "mean")
            w, pw = on(torch.rand(4, 5, generator=g), torch.tensor(2.5))
            check_triton_case(x, y.float(), w, pw, "none")
            for dtype in (torch.bfloat16, torch.float16):
                check_triton_case((x * 0.5).to(dtype), y.to(dtype), reduction="sum")
    # the upstream gradient: 0.5 halves the kept gradient in place, 1 leaves it as it is
    x, y = on(torch.randn(3000, generator=g), torch.rand(3000, generator=g))
    for upstream in (0.5, 1.0):
        x.requires_grad_()
        loss = fused_bce_with_logits(x, y)
        kept = loss.grad_fn.grad.clone()
        loss.backward(torch.tensor(upstream, device=device))
        assert torch.equal(x.grad, kept * upstream)
        x = x.detach()
    check_bad_targets(device)


def check_bad_targets(device: str) -> None:
    """A target outside [0, 1] or NaN: the kernel makes its loss and gradient NaN; on the CPU
    the call raises, on CUDA it returns NaN (check_targets=True raises on both)."""
    for bad in (2.0, -0.5, float("nan")):
        x, y = torch.randn(5000), torch.rand(5000)
        y[4321] = bad
        x, y = x.to(device), y.to(device)
        loss, grad = fused_triton.forward(x, y, None, None, "mean", True)
        assert loss.isnan().item() and grad.isnan().nonzero().flatten().tolist() == [4321]
        each, _ = fused_triton.forward(x, y, None, None, "none", False)
        assert each.isnan().nonzero().flatten().tolist() == [4321]
        with pytest.raises(ValueError, match=r"target must lie in \[0, 1\].*5000 elements"):
            fused_bce_with_logits(x, y, check_targets=True)
        if device == "cpu":
            with pytest.raises(ValueError, match=r"target must lie in \[0, 1\]"):
                fused_bce_with_logits(x, y)
        else:
            assert fused_bce_with_logits(x, y).isnan().item()
            # float64 takes the compiled formulas, which mark a bad target the same way
            x64 = x.double().requires_grad_()
            loss = fused_bce_with_logits(x64, y.double())
            loss.backward()
            assert loss.isnan().item() and x64.grad.isnan().nonzero().flatten().tolist() == [4321]


def test_triton_kernels_match_float64_under_the_interpreter():
    """TRITON_INTERPRET=1 runs Triton kernels on CPU tensors. Triton reads it when it
    compiles a kernel's definition, so the cases run in a subprocess that sets it first."""
    code = (
        "from tests.bce_helpers.fast.test_fused_triton import run_triton_cases; "
        "run_triton_cases('cpu')"
    )
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code + "; print('ok')"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the GPU check)")
def test_triton_kernels_match_float64_on_cuda():
    run_triton_cases("cuda")


def test_triton_path_is_chosen_only_where_it_runs():
    if fused_triton.INTERPRETING:
        pytest.skip("this process runs Triton's interpreter")
    assert not fused_triton.usable(torch.zeros(1))  # the CPU takes inductor
    assert not fused_triton.usable(torch.zeros(1, dtype=torch.float64))


def test_variants_and_grid():
    assert fused_triton.variant_for(2**22) == fused_triton.SMALL
    assert fused_triton.variant_for(2**22 + 1) == fused_triton.LARGE
    assert fused_triton.variant_for(2**28, weighted=True) == fused_triton.SMALL
    with fused_triton.forced_variant(fused_triton.LARGE):
        assert fused_triton.variant_for(10) == fused_triton.LARGE
    assert fused_triton.variant_for(10) == fused_triton.SMALL
    cpu = torch.device("cpu")
    assert fused_triton.programs(cpu, 1, fused_triton.SMALL) == 1
    assert fused_triton.programs(cpu, 10**6, fused_triton.SMALL) == 3


def _cuobjdump() -> Path | None:
    if fused_triton.triton is None:
        return None
    tool = Path(fused_triton.triton.__file__).parent / "backends/nvidia/bin/cuobjdump"
    return tool if tool.exists() else None


@pytest.mark.skipif(_cuobjdump() is None, reason="needs Triton's CUDA backend tools (ptxas)")
@pytest.mark.parametrize("variant, weighted", [("small", True), ("large", False)])
def test_pass_compiles_for_sm90_without_spills_or_64_bit_division(variant, weighted):
    """The pass compiled for an H100 with no GPU, as each size takes it (weights take the small
    blocks): the interpreter does not compile, so a kernel that would not build fails here."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    v = fused_triton.VARIANTS[variant]
    pointers = ("x_ptr", "y_ptr", "w_ptr", "pw_ptr", "grad_ptr", "loss_ptr")
    ints = ("n", "blocks", "w_inner", "w_period", "pw_inner", "pw_period")
    flags = dict(HAS_W=weighted, HAS_PW=weighted, NEED_GRAD=True, PER_ELEMENT=False, WIDE=False)
    signature = {
        **dict.fromkeys(pointers, "*fp32"),
        **dict.fromkeys(ints, "i32"),
        "loss_scale": "fp32",
        "grad_scale": "fp32",
        **dict.fromkeys([*flags, "BLOCK"], "constexpr"),
    }
    source = ASTSource(fused_triton._bce_pass_kernel, signature, {**flags, "BLOCK": v.block})
    kernel = fused_triton.triton.compile(
        source, target=GPUTarget("cuda", 90, 32), options={"num_warps": v.warps}
    )
    ptx = kernel.asm["ptx"]
    assert not re.search(r"\b(div|rem)\.[su]64\b", ptx), "a 64-bit division"
    if weighted:
        assert re.search(r"\b(div|rem)\.[su]32\b", ptx), "the weights' index is computed here"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as cubin:
        cubin.write(kernel.asm["cubin"])
        cubin.flush()
        usage = subprocess.run(
            [str(_cuobjdump()), "-res-usage", cubin.name], capture_output=True, text=True
        ).stdout
    registers = int(re.search(r"REG:(\d+)", usage)[1])
    assert re.search(r"STACK:0\b", usage), f"registers spill: {usage}"
    # the programs per multiprocessor the grid launches fit in its 64K registers at once
    per_sm = v.weighted_programs_per_sm if weighted else v.programs_per_sm
    assert registers * 32 * v.warps * per_sm <= 65536, f"{registers} registers a thread"


def test_the_kernels_log1p_uses_the_formulas_coefficients():
    """The Triton kernel writes log1p's series with literal coefficients (a jitted function
    reads no Python tuple): they are formulas.ATANH_SERIES_FLOAT32's, in Horner's order."""
    from bce_helpers.fast.formulas import ATANH_SERIES_FLOAT32

    source = Path(fused_triton.__file__).read_text()
    body = source[source.index("def _log1p_series(t):") :].split("return", 1)[0]
    literals = [float(v) for v in re.findall(r"\d+\.\d{6,}", body)]
    assert literals == list(ATANH_SERIES_FLOAT32)
