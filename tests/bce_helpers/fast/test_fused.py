"""fused_bce_with_logits against torch: values, input gradients, the one-pass design, bad
input, bounded compiles, the Triton kernel (under Triton's interpreter) and the fallback."""

import contextlib
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from torch._dynamo.exc import BackendCompilerFailed

from bce_helpers.fast import compiler, formulas, fused, fused_cpu
from bce_helpers.fast.fused import fused_bce_with_logits
from tests.bce_helpers.test_losses import TOL, bce_case

# the 16-bit types are compared with torch's float32 result on the same (rounded) inputs
LOW_PRECISION_TOL = {
    torch.bfloat16: dict(atol=2e-2, rtol=2e-2),
    torch.float16: dict(atol=2e-3, rtol=2e-3),
}


def check_against_torch(logits, target, weight, pos_weight, reduction, tol=None):
    """Loss and input gradient of the fused loss against torch's (in float32 for 16-bit)."""
    low = logits.dtype in LOW_PRECISION_TOL
    tol = tol or (LOW_PRECISION_TOL[logits.dtype] if low else TOL[logits.dtype])
    x1 = logits.clone().requires_grad_()
    x2 = (logits.float() if low else logits).clone().requires_grad_()
    ours = fused_bce_with_logits(x1, target, weight, pos_weight, reduction)
    cast = (lambda t: None if t is None else t.float()) if low else (lambda t: t)
    ref = F.binary_cross_entropy_with_logits(
        x2, cast(target), cast(weight), pos_weight=cast(pos_weight), reduction=reduction
    )
    assert ours.dtype == logits.dtype and ours.shape == ref.shape
    torch.testing.assert_close(ours.to(ref.dtype), ref, **tol)
    # a non-uniform upstream gradient for 'none', to test the chain rule too
    upstream = torch.rand_like(ref) if reduction == "none" else torch.tensor(1.7, dtype=ref.dtype)
    ours.backward(upstream.to(ours.dtype))
    ref.backward(upstream)
    assert x1.grad.dtype == logits.dtype and x1.grad.shape == logits.shape
    torch.testing.assert_close(x1.grad.to(ref.dtype), x2.grad, **tol)


@pytest.fixture(params=["C kernel", "inductor"])
def cpu_path(request, monkeypatch):
    """Each CPU path of the unweighted float32 loss in turn: the C kernel, then inductor's."""
    kernel = request.param == "C kernel"
    if kernel and fused_cpu.library() is None:
        pytest.skip("the C kernel is not built here (tests/test_fused_cpu.py says why)")
    monkeypatch.setenv("BCE_HELPERS_CPU_KERNEL", "1" if kernel else "0")
    assert fused_cpu.usable(torch.zeros(1)) is kernel, "the path named must be the one taken"
    return request.param


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_matches_torch(reduction, weighted, cpu_path):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(32, 5, generator=g) * 10
    y = torch.rand(32, 5, generator=g)
    w = torch.rand(5, generator=g) if weighted else None
    pw = 3 * torch.rand(5, generator=g) if weighted else None
    check_against_torch(x, y, w, pw, reduction)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_a_long_sum_keeps_float32_accuracy_on_one_thread(reduction, cpu_path):
    # inductor's float32 sum (4096 vectors at a time in float32) was 2.2e-7 off here on one
    # thread, 1.9e-6 at 2^16 + 3 elements: the fused loss sums in float64 on the CPU
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(2**20 + 5, generator=g) * 5, torch.rand(2**20 + 5, generator=g)
    ref = F.binary_cross_entropy_with_logits(x.double(), y.double(), reduction=reduction)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ours = fused_bce_with_logits(x, y, reduction=reduction)
    finally:
        torch.set_num_threads(threads)
    assert ours.dtype == torch.float32
    assert abs(ours.double().item() / ref.item() - 1) < 1e-7  # float32 rounds at 6e-8


def test_compiled_matches_torch_across_sizes_dtypes_and_broadcasts(cpu_path):
    for n in (1, 7, 1000, 2**16 + 3):
        x, y = torch.randn(n) * 5, torch.randint(0, 2, (n,)).float()
        check_against_torch(x, y, None, None, "mean")
    for dtype in (torch.bfloat16, torch.float16):
        x, y = (torch.randn(3000) * 5).to(dtype), torch.rand(3000).to(dtype)
        check_against_torch(x, y, None, torch.tensor([2.0], dtype=dtype), "mean")
    # a per-channel pos_weight [C, 1, 1] on [B, C, H, W] and an exotic [C, 1, W] weight
    x, y = torch.randn(2, 3, 4, 5) * 4, torch.rand(2, 3, 4, 5)
    check_against_torch(x, y, torch.rand(3, 1, 5), 3 * torch.rand(3, 1, 1), "sum")


def test_periodic_layout_of_weights():
    shape = torch.Size([2, 3, 4, 5])
    x = torch.arange(shape.numel()).reshape(shape)
    for w_shape in [(), (1,), (5,), (4, 5), (3, 1, 1), (3, 4, 1), (2, 3, 4, 5), (1, 3, 1, 1)]:
        w = torch.arange(1, 1 + torch.Size(w_shape).numel()).reshape(w_shape)
        spread = fused.spread(fused.periodic(w, shape), shape.numel())
        torch.testing.assert_close(spread.expand(shape.numel()), (w * (x * 0 + 1)).reshape(-1))
    assert fused.periodic(torch.ones(3, 1, 5), shape) is None  # exotic: not one block


@settings(max_examples=100, deadline=None, derandomize=True)
@given(case=bce_case())
def test_formulas_match_torch_everywhere(case):
    with eager_formulas():  # per example, so no other test runs uncompiled by accident
        assert not compiler.compile_enabled()
        check_against_torch(*case)
    assert compiler.compile_enabled()


@contextlib.contextmanager
def eager_formulas():
    """Run the fused formulas uncompiled (fast to test over many shapes and dtypes)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BCE_HELPERS_COMPILE", "0")
        yield


def test_forward_keeps_one_tensor_and_backward_by_one_moves_nothing():
    x, y = torch.randn(100, 3, requires_grad=True), torch.rand(100, 3)
    loss = fused_bce_with_logits(x, y)
    node = loss.grad_fn
    assert node.saved_tensors == ()  # nothing saved for autograd but the gradient below
    expected = (torch.sigmoid(x) - y).detach() / x.numel()  # by hand: (sigmoid(x) - y) / N
    torch.testing.assert_close(node.grad, expected)
    pointer = node.grad.data_ptr()  # (no reference kept here: autograd may take the tensor)
    loss.backward()  # an upstream gradient of 1: the kept tensor is the gradient, untouched
    assert x.grad.data_ptr() == pointer
    torch.testing.assert_close(x.grad, expected)
    # without grad, no gradient is computed at all
    with torch.no_grad():
        assert fused_bce_with_logits(x, y).grad_fn is None


def test_backward_twice_says_why():
    x, y = torch.randn(10, requires_grad=True), torch.rand(10)
    loss = fused_bce_with_logits(x, y)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward ran twice through the same loss"):
        loss.backward()


def test_bad_input():
    x, y = torch.randn(4, 3), torch.rand(4, 3)
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\].*first: 2.0"):
        fused_bce_with_logits(x, torch.full((4, 3), 2.0))
    with pytest.raises(ValueError, match="target must lie in"):
        fused_bce_with_logits(x, torch.full((4, 3), float("nan")))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(4,\) does not broadcast"):
        fused_bce_with_logits(x, y, pos_weight=torch.ones(4))
    with pytest.raises(ValueError, match="pos_weight must be a torch.Tensor"):
        fused_bce_with_logits(x, y, pos_weight=2.0)
    with pytest.raises(ValueError, match="reduction must be one of"):
        fused_bce_with_logits(x, y, reduction="avg")
    with pytest.raises(ValueError, match="weight requires grad, but fused_bce_with_logits"):
        fused_bce_with_logits(x, y, weight=torch.ones(3, requires_grad=True))
    with pytest.raises(ValueError, match="target is on meta but input is on cpu"):
        fused_bce_with_logits(x, y.to("meta"))


def test_any_rank_and_shape_compiles_a_bounded_number_of_graphs(cpu_path):
    from torch._dynamo.utils import counters

    def both_variants(shape):
        x, y = torch.randn(shape, requires_grad=True), torch.rand(shape)
        fused_bce_with_logits(x, y).backward()
        torch.testing.assert_close(x.grad, (torch.sigmoid(x) - y).detach() / x.numel())
        x.grad = None
        w, pw = torch.rand(shape[-1:]), 3 * torch.rand(shape[-2:] if len(shape) > 1 else ())
        fused_bce_with_logits(x, y, w, pw).backward()
        expected = w * ((pw * y + 1 - y) * torch.sigmoid(x) - pw * y) / x.numel()  # by hand
        torch.testing.assert_close(x.grad, expected.detach())

    both_variants((5, 4))  # compiles the variants once: no weights, a weight per class,
    both_variants((3,))  # and a scalar pos_weight
    before = counters["stats"]["unique_graphs"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a recompile-limit warning would fail here
        for shape in [(6, 2), (2, 3, 4), (1, 2, 3, 4, 5), (7, 1, 1, 1, 1, 2), (999,), (20,)]:
            both_variants(shape)
    assert counters["stats"]["unique_graphs"] - before == 0


@contextlib.contextmanager
def fresh_compiled(make_compiled):
    """fused's compiled pass replaced by make_compiled(fn) for the block (and taken: not the
    C kernel)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BCE_HELPERS_COMPILE", "1")
        mp.setenv("BCE_HELPERS_CPU_KERNEL", "0")
        mp.setattr(fused, "_compiled_flat_one_pass", make_compiled(fused._flat_one_pass))
        yield fused._compiled_flat_one_pass


def test_falls_back_to_eager_with_a_warning_only_when_the_compiler_is_missing(monkeypatch):
    def broken_backend(fn, **options):
        def call(*args, **kwargs):
            raise BackendCompilerFailed(torch.compile, RuntimeError("no C++ compiler here"), None)

        return call

    monkeypatch.setattr(torch, "compile", broken_backend)
    with fresh_compiled(lambda fn: compiler.Compiled(fn, "fused_bce_with_logits")) as call:
        x, y = torch.randn(10, requires_grad=True), torch.rand(10)
        with pytest.warns(RuntimeWarning, match="running the same formulas eagerly"):
            loss = fused_bce_with_logits(x, y)
        loss.backward()
        torch.testing.assert_close(loss, F.binary_cross_entropy_with_logits(x, y))
        torch.testing.assert_close(x.grad, (torch.sigmoid(x) - y).detach() / 10)
        assert call.eager  # for good: no second warning
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fused_bce_with_logits(x, y)


def test_the_callers_errors_reach_the_caller_unchanged(monkeypatch):
    out_of_memory = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")
    calls = []

    def runs_out_of_memory(fn, **options):
        def call(*args, **kwargs):
            calls.append(args)
            if len(calls) == 1:
                raise out_of_memory
            return fn(*args, **kwargs)

        return call

    monkeypatch.setattr(torch, "compile", runs_out_of_memory)
    with fresh_compiled(lambda fn: compiler.Compiled(fn, "fused_bce_with_logits")) as call:
        x, y = torch.randn(10), torch.rand(10)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "falling back" warning
            with pytest.raises(torch.OutOfMemoryError) as info:
                fused_bce_with_logits(x, y)
            assert info.value is out_of_memory
            assert not call.eager
            torch.testing.assert_close(
                fused_bce_with_logits(x, y), F.binary_cross_entropy_with_logits(x, y)
            )
        assert len(calls) == 2  # the second call went through the compiled path again


def test_compiler_refusing_outright_falls_back(monkeypatch):
    def double(x):
        return 2 * x

    monkeypatch.setenv("BCE_HELPERS_COMPILE", "0")
    assert compiler.compiled(double)(torch.tensor(3.0)).item() == 6.0
    monkeypatch.setenv("BCE_HELPERS_COMPILE", "1")

    def refuses(fn, **options):
        raise RuntimeError("Dynamo is not supported on this Python")

    monkeypatch.setattr(torch, "compile", refuses)
    call = compiler.compiled(double)
    with pytest.warns(RuntimeWarning, match="Dynamo is not supported"):
        assert call(torch.tensor(3.0)).item() == 6.0
    assert call(torch.tensor(4.0)).item() == 8.0 and call.eager


@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 2.5e-7), (torch.float64, 5e-16)])
def test_log1p_series_matches_log1p_on_the_unit_interval(dtype, rtol):
    # evenly spread, and down to the tiny values exp(-|x|) takes for large |x|
    t = torch.cat([torch.linspace(0, 1, 2**20, dtype=torch.float64), torch.logspace(-30, 0, 10**4)])
    t = t.to(dtype)
    exact = torch.log1p(t.double())
    rel = (formulas.log1p_series(t).double() - exact).abs() / exact.clamp_min(1e-300)
    assert rel.max().item() <= rtol
    assert formulas.log1p_series(torch.zeros(3, dtype=dtype)).eq(0).all()


def test_inductor_options_this_torch_lacks_are_left_out():
    options = {"cpp.enable_floating_point_contract_flag": "fast", "no_such": 1, "cpp.no_such": 2}
    got = compiler.known_options({"dynamic": True, "options": options})
    assert got == {"dynamic": True, "options": {"cpp.enable_floating_point_contract_flag": "fast"}}
    assert compiler.known_options({"dynamic": True}) == {"dynamic": True}


def test_exp_neg_matches_exp_and_stays_finite():
    spread = torch.linspace(0, 87, 2**20, dtype=torch.float64)
    a = torch.cat([spread, torch.logspace(-30, 0, 10**4, dtype=torch.float64)]).float()
    exact = torch.exp(-a.double())  # of the same float32 inputs
    rel = (formulas.exp_neg(a).double() - exact).abs() / exact
    assert rel.max().item() <= 1.5e-7  # torch's own float32 exp: 6.3e-8 on these points
    # past exp(-87) it stays at its floor, about 1.6e-38: no 2^k out of range, no inf
    far = formulas.exp_neg(torch.tensor([87.0, 100.0, 1e30, float("inf")]))
    assert far.eq(far[0]).all() and 1.6e-38 < far[0].item() < 1.7e-38
    assert formulas.exp_neg(torch.tensor(float("nan"))).isnan()
    assert formulas.exp_neg(torch.tensor([0.0])).item() == 1.0
    # float64 and other devices: torch.exp itself
    d = torch.tensor([0.5, 800.0], dtype=torch.float64)
    assert torch.equal(formulas.exp_neg(d), torch.exp(-d))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_compiled_pass_is_one_loop_over_memory(reduction):
    from torch._inductor.utils import run_and_get_code

    fresh = torch.compile(fused._flat_one_pass, dynamic=True, options=fused.COMPILE_OPTIONS)
    x, y = torch.randn(2**16 + 3), torch.rand(2**16 + 3)  # past inductor's threads threshold
    scale = torch.full((), 1 / x.numel()) if reduction == "mean" else None  # as _forward does
    with fused.compile_settings():
        (loss, grad, bad), codes = run_and_get_code(fresh, x, y, None, None, reduction, True, scale)
    # one C++ loop over the elements reads x and y and writes the gradient (and the losses
    # for 'none'); a second would read memory again, as the 'sum' loss did before
    # COMPILE_OPTIONS raised inductor's limit on formulas computed inside their consumer
    assert len(re.findall(r"for\s*\(int64_t x0\b", "".join(codes))) == 1
    # 1/N comes in as a tensor: without it the loop divided by the size for every vector
    assert "/ static_cast<double>(ks" not in "".join(codes)
    ref_x = x.clone().requires_grad_()
    ref = F.binary_cross_entropy_with_logits(ref_x, y, reduction=reduction)
    ref.backward(torch.ones_like(ref))
    torch.testing.assert_close(loss, ref.detach())
    torch.testing.assert_close(grad, ref_x.grad)
    assert not bad
