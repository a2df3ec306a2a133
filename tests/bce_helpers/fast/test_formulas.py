"""formulas: log1p_series and exp_neg against float64, one_pass's loss, gradient and
bad-target flag against torch's float64 autograd, target_gradient against torch's."""

import pytest
import torch
import torch.nn.functional as F

from bce_helpers.fast import formulas


@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 2.5e-7), (torch.float64, 5e-16)])
def test_log1p_series_matches_log1p_on_the_unit_interval(dtype, rtol):
    # evenly spread, and down to the tiny values exp(-|x|) takes for large |x|
    t = torch.cat([torch.linspace(0, 1, 2**20, dtype=torch.float64), torch.logspace(-30, 0, 10**4)])
    t = t.to(dtype)
    exact = torch.log1p(t.double())
    rel = (formulas.log1p_series(t).double() - exact).abs() / exact.clamp_min(1e-300)
    assert rel.max().item() <= rtol
    assert formulas.log1p_series(torch.zeros(3, dtype=dtype)).eq(0).all()


def test_the_series_has_as_many_terms_as_its_precision_needs():
    """The float64 series stops where the next term, at most (1/9)^k / (2k + 1), is below half
    an ulp of 1; the float32 fit's 4 terms are within float32's rounding (above)."""
    terms = len(formulas.ATANH_SERIES[torch.float64])
    assert (1 / 9) ** (terms + 1) / (2 * terms + 3) < 2**-53 < (1 / 9) ** terms / (2 * terms + 1)
    assert len(formulas.ATANH_SERIES[torch.float32]) == 4


def test_exp_neg_matches_exp_and_stays_finite():
    spread = torch.linspace(0, 87, 2**20, dtype=torch.float64)
    a = torch.cat([spread, torch.logspace(-30, 0, 10**4, dtype=torch.float64)]).float()
    exact = torch.exp(-a.double())  # of the same float32 inputs
    rel = (formulas.exp_neg(a).double() - exact).abs() / exact
    assert rel.max().item() <= 1.5e-7  # a little over float32's rounding, as torch's own exp
    # past exp(-87) it stays at its floor, about 1.6e-38: no 2^k out of range, no inf
    far = formulas.exp_neg(torch.tensor([87.0, 100.0, 1e30, float("inf")]))
    assert far.eq(far[0]).all() and 1.6e-38 < far[0].item() < 1.7e-38
    assert formulas.exp_neg(torch.tensor(float("nan"))).isnan()
    assert formulas.exp_neg(torch.tensor([0.0])).item() == 1.0
    # float64 and other devices: torch.exp itself
    d = torch.tensor([0.5, 800.0], dtype=torch.float64)
    assert torch.equal(formulas.exp_neg(d), torch.exp(-d))


def test_computing_dtype_widens_16_bit_types_only_to_float32():
    assert formulas.computing_dtype(torch.float64) == torch.float64
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        assert formulas.computing_dtype(dtype) == torch.float32


@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_one_pass_gives_torchs_loss_and_gradient(dtype, rtol, reduction, weighted):
    g = torch.Generator().manual_seed(7)
    x64 = torch.cat([torch.randn(6, 50, generator=g, dtype=torch.float64) * 8,
                     torch.tensor([[0.0, -0.0, 1e-8, -1e-8, 30.0, -30.0, 100.0, -100.0] * 6
                                   + [5.0, -5.0]], dtype=torch.float64)])  # fmt: skip
    y64 = torch.rand(7, 50, generator=g, dtype=torch.float64)
    y64[0, :10] = torch.tensor([0.0, 1.0] * 5, dtype=torch.float64)  # hard labels too
    w64 = torch.rand(50, generator=g, dtype=torch.float64) if weighted else None
    pw64 = 3 * torch.rand(7, 1, generator=g, dtype=torch.float64) if weighted else None
    x, y = x64.to(dtype), y64.to(dtype)
    w, pw = (None if t is None else t.to(dtype) for t in (w64, pw64))
    loss, grad, bad = formulas.one_pass(x, y, w, pw, reduction, need_grad=True)
    ref_x = x.double().requires_grad_()
    ref = F.binary_cross_entropy_with_logits(ref_x, y.double(), w64, pos_weight=pw64,
                                             reduction=reduction)  # fmt: skip
    ref.backward(torch.ones_like(ref))
    assert loss.dtype == grad.dtype == dtype and not bad
    scale = ref.detach().abs().max()
    assert ((loss.double() - ref.detach()).abs().max() / scale).item() <= rtol
    grad_scale = ref_x.grad.abs().max()
    assert ((grad.double() - ref_x.grad).abs().max() / grad_scale).item() <= rtol
    assert formulas.one_pass(x, y, w, pw, reduction, need_grad=False)[1] is None


def test_one_pass_flags_a_bad_target_without_raising():
    x = torch.zeros(4)
    for bad in (-1e-7, 1.5, float("nan")):
        y = torch.tensor([0.0, 1.0, bad, 0.5])
        assert formulas.one_pass(x, y, None, None, "mean", need_grad=True)[2]
    assert not formulas.one_pass(x, torch.tensor([0.0, 1.0, 0.25, 0.5]), None, None, "sum", False)[
        2
    ]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_target_gradient_is_torchs(reduction, weighted):
    g = torch.Generator().manual_seed(8)
    x, y = torch.randn(9, 4, generator=g) * 5, torch.rand(9, 4, generator=g, requires_grad=True)
    w = torch.rand(4, generator=g) if weighted else None
    pw = 3 * torch.rand(9, 1, generator=g) if weighted else None
    ref = F.binary_cross_entropy_with_logits(x, y, w, pos_weight=pw, reduction=reduction)
    upstream = torch.rand(ref.shape, generator=g) + 0.5
    ref.backward(upstream)
    ours = formulas.target_gradient(x, w, pw, reduction, upstream, torch.float32)
    torch.testing.assert_close(ours, y.grad)


def test_one_pass_in_16_bits_computes_in_float32_and_rounds_once():
    """bfloat16 inputs: the loss and gradient come back in bfloat16, each within one rounding
    (2^-8 relative) of float64 torch on the same rounded inputs, element by element."""
    g = torch.Generator().manual_seed(9)
    x = (torch.randn(4000, generator=g) * 6).to(torch.bfloat16)
    y = torch.rand(4000, generator=g).to(torch.bfloat16)
    loss, grad, bad = formulas.one_pass(x, y, None, None, "none", need_grad=True)
    assert loss.dtype == grad.dtype == torch.bfloat16 and not bad
    ref_x = x.double().requires_grad_()
    ref = F.binary_cross_entropy_with_logits(ref_x, y.double(), reduction="none")
    ref.sum().backward()
    for ours, exact in ((loss, ref.detach()), (grad, ref_x.grad)):
        rel = (ours.double() - exact).abs() / exact.abs().clamp_min(1e-30)
        assert rel.max().item() <= 2**-8


def test_one_pass_scales_the_gradient_by_the_given_grad_scale():
    """grad_scale replaces 1/N for 'mean' (a compiled loop passes it in); without it, one
    element's 'mean' gradient is the 'sum' gradient itself."""
    x = torch.tensor([-2.0, 0.5, 3.0], dtype=torch.float64)
    y = torch.tensor([0.0, 1.0, 0.25], dtype=torch.float64)
    ref_x = x.clone().requires_grad_()
    F.binary_cross_entropy_with_logits(ref_x, y, reduction="sum").backward()
    scale = torch.tensor(0.25, dtype=torch.float64)
    grad = formulas.one_pass(x, y, None, None, "mean", True, grad_scale=scale)[1]
    torch.testing.assert_close(grad, ref_x.grad * 0.25)
    one_x = torch.tensor([1.5], dtype=torch.float64).requires_grad_()
    F.binary_cross_entropy_with_logits(one_x, y[2:]).backward()
    one_grad = formulas.one_pass(one_x.detach(), y[2:], None, None, "mean", True)[1]
    torch.testing.assert_close(one_grad, one_x.grad)


def test_on_the_cpu_a_bad_target_is_flagged_not_poisoned():
    """On the CPU the flag is read at once, so the loss and gradient keep torch's values
    for the bad target (torch computes them for any y) and the flag says it is bad."""
    x = torch.tensor([0.5, -1.0], dtype=torch.float64)
    y = torch.tensor([1.5, 0.5], dtype=torch.float64)
    loss, grad, bad = formulas.one_pass(x, y, None, None, "none", need_grad=True)
    ref_x = x.clone().requires_grad_()
    ref = F.binary_cross_entropy_with_logits(ref_x, y, reduction="none")
    ref.sum().backward()
    assert bad
    torch.testing.assert_close(loss, ref.detach())
    torch.testing.assert_close(grad, ref_x.grad)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_off_the_cpu_the_pass_gives_torchs_shapes_and_dtypes_without_reading_the_flag(reduction):
    """On a device whose flag would make the host wait, bad targets turn the loss and the
    gradient NaN instead (the meta device runs that path with shapes and dtypes only)."""
    x = torch.empty(3, 5, device="meta", dtype=torch.bfloat16)
    y = torch.empty(3, 5, device="meta", dtype=torch.bfloat16)
    w = torch.empty(5, device="meta", dtype=torch.bfloat16)
    ref = F.binary_cross_entropy_with_logits(x, y, w, pos_weight=w, reduction=reduction)
    loss, grad, _ = formulas.one_pass(x, y, w, w, reduction, need_grad=True)
    assert (loss.shape, loss.dtype, loss.device) == (ref.shape, ref.dtype, ref.device)
    assert (grad.shape, grad.dtype, grad.device) == (x.shape, x.dtype, x.device)


def test_target_gradient_of_16_bit_inputs_is_computed_in_float32():
    g = torch.Generator().manual_seed(10)
    x = (torch.randn(6, 4, generator=g) * 5).to(torch.bfloat16)
    w = torch.rand(4, generator=g).to(torch.bfloat16)
    pw = (3 * torch.rand(6, 1, generator=g)).to(torch.bfloat16)
    upstream = torch.tensor(0.75, dtype=torch.bfloat16)
    y = torch.rand(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    ref = F.binary_cross_entropy_with_logits(x.double(), y, w.double(), pos_weight=pw.double())
    ref.backward(upstream.double())
    ours = formulas.target_gradient(x, w, pw, "mean", upstream, torch.float32)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours.double(), y.grad, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_log1p_series_takes_the_float32_coefficients_for_16_bit_types(dtype):
    t = torch.linspace(0, 1, 1001).to(dtype)
    exact = torch.log1p(t.double())
    rel = (formulas.log1p_series(t).double() - exact).abs() / exact.clamp_min(1e-30)
    assert formulas.log1p_series(t).dtype == dtype
    assert rel.max().item() <= 8 * torch.finfo(dtype).eps  # a few roundings of the dtype
