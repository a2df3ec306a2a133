"""fused_bce_with_logits against torch: values, input gradients, bad input, eager fallback."""

import contextlib
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings

from bce_helpers import losses
from bce_helpers.losses import fused_bce_with_logits
from tests.test_losses import TOL, bce_case


def check_against_torch(logits, target, weight, pos_weight, reduction, tol):
    x1, x2 = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    ours = fused_bce_with_logits(x1, target, weight, pos_weight, reduction)
    ref = F.binary_cross_entropy_with_logits(
        x2, target, weight, pos_weight=pos_weight, reduction=reduction
    )
    torch.testing.assert_close(ours, ref, **tol)
    # a non-uniform upstream gradient for 'none', to test the chain rule too
    upstream = torch.rand_like(ref) if reduction == "none" else torch.tensor(1.7, dtype=ref.dtype)
    ours.backward(upstream)
    ref.backward(upstream)
    torch.testing.assert_close(x1.grad, x2.grad, **tol)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_matches_torch(reduction, weighted):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(32, 5, generator=g) * 10
    y = torch.rand(32, 5, generator=g)
    w = torch.rand(5, generator=g) if weighted else None
    pw = 3 * torch.rand(5, generator=g) if weighted else None
    check_against_torch(x, y, w, pw, reduction, TOL[torch.float32])


def test_compiled_matches_torch_across_sizes():
    for n in (1, 7, 1000, 2**16 + 3):
        x, y = torch.randn(n) * 5, torch.randint(0, 2, (n,)).float()
        check_against_torch(x, y, None, None, "mean", TOL[torch.float32])


@settings(max_examples=100, deadline=None, derandomize=True)
@given(case=bce_case())
def test_formulas_match_torch_everywhere(case):
    with eager_formulas():  # per example, so no other test runs uncompiled by accident
        assert not losses.compile_enabled()
        check_against_torch(*case, TOL[case[0].dtype])
    assert losses.compile_enabled()


@contextlib.contextmanager
def fresh_compile_cache():
    """An empty cache of compiled kernels, the previous one restored afterwards."""
    saved = dict(losses._COMPILED)
    losses._COMPILED.clear()
    try:
        yield
    finally:
        losses._COMPILED.clear()
        losses._COMPILED.update(saved)


@contextlib.contextmanager
def eager_formulas():
    """Run the fused formulas uncompiled (fast to test over many shapes and dtypes)."""
    with pytest.MonkeyPatch.context() as mp, fresh_compile_cache():
        mp.setenv("BCE_HELPERS_COMPILE", "0")
        yield


def test_bad_input():
    assert losses.compile_enabled(), "the compiled path is the one under test here"
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


def test_falls_back_to_eager_with_a_warning(monkeypatch):
    def no_compile(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", no_compile)
    monkeypatch.setenv("BCE_HELPERS_COMPILE", "1")
    with fresh_compile_cache():
        x = torch.randn(10, requires_grad=True)
        y = torch.rand(10)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loss = fused_bce_with_logits(x, y)
            loss.backward()
        assert any("running the same formulas eagerly" in str(w.message) for w in caught)
        torch.testing.assert_close(loss, F.binary_cross_entropy_with_logits(x, y))
        torch.testing.assert_close(x.grad, (torch.sigmoid(x) - y).detach() / 10)


@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 2.5e-7), (torch.float64, 5e-16)])
def test_log1p_series_matches_log1p_on_the_unit_interval(dtype, rtol):
    # evenly spread, and down to the tiny values exp(-|x|) takes for large |x|
    t = torch.cat([torch.linspace(0, 1, 2**20, dtype=torch.float64), torch.logspace(-30, 0, 10**4)])
    t = t.to(dtype)
    exact = torch.log1p(t.double())
    rel = (losses.log1p_series(t).double() - exact).abs() / exact.clamp_min(1e-300)
    assert rel.max().item() <= rtol
    assert losses.log1p_series(torch.zeros(3, dtype=dtype)).eq(0).all()
