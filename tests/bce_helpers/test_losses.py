"""bce_helpers.losses against torch itself: values, gradients and bad input.

Hypothesis runs derandomized: the same examples every run, so a result is reproducible.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from bce_helpers.losses import (
    bce,
    bce_with_logits,
    check_bce_args,
    log_sigmoid,
    naive_bce_with_logits,
)

TOL = {torch.float32: dict(atol=1e-6, rtol=1e-6), torch.float64: dict(atol=1e-12, rtol=1e-12)}
REDUCTIONS = ["none", "mean", "sum"]


@st.composite
def bce_case(draw):
    """A shape, dtype, reduction, soft or hard targets, and optional broadcast weights."""
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=0, max_size=4)))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=g, dtype=dtype) * draw(st.sampled_from([1.0, 5.0, 30.0]))
    if draw(st.booleans()):
        target = torch.rand(shape, generator=g, dtype=dtype)
    else:
        target = torch.randint(0, 2, shape, generator=g).to(dtype)

    def broadcastable():
        # a trailing part of the shape, some dims squeezed to 1
        k = draw(st.integers(0, len(shape)))
        sub = [1 if draw(st.booleans()) else n for n in shape[len(shape) - k :]]
        return torch.rand(sub, generator=g, dtype=dtype) * 3

    weight = broadcastable() if draw(st.booleans()) else None
    pos_weight = broadcastable() if draw(st.booleans()) else None
    reduction = draw(st.sampled_from(REDUCTIONS))
    return logits, target, weight, pos_weight, reduction


@settings(max_examples=150, deadline=None, derandomize=True)
@given(bce_case())
def test_bce_with_logits_matches_torch(case):
    logits, target, weight, pos_weight, reduction = case
    x1 = logits.clone().requires_grad_()
    x2 = logits.clone().requires_grad_()
    ours = bce_with_logits(x1, target, weight, pos_weight, reduction)
    ref = F.binary_cross_entropy_with_logits(
        x2, target, weight, pos_weight=pos_weight, reduction=reduction
    )
    torch.testing.assert_close(ours, ref, **TOL[logits.dtype])
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, **TOL[logits.dtype])


@settings(max_examples=150, deadline=None, derandomize=True)
@given(bce_case())
def test_bce_matches_torch(case):
    logits, target, weight, _, reduction = case
    # logits up to +-100 or so: in float32 many probabilities round to exactly 0 or 1
    p = torch.sigmoid(logits)
    p1, p2 = p.clone().requires_grad_(), p.clone().requires_grad_()
    y1, y2 = target.clone().requires_grad_(), target.clone().requires_grad_()
    ours = bce(p1, y1, weight, reduction)
    ref = F.binary_cross_entropy(p2, y2, weight, reduction=reduction)
    torch.testing.assert_close(ours, ref, **TOL[p.dtype])
    ours.sum().backward()
    ref.sum().backward()
    # the gradient divides by max(p (1 - p), 1e-12): compare relative to its size
    torch.testing.assert_close(p1.grad, p2.grad, atol=TOL[p.dtype]["atol"], rtol=1e-5)
    # torch's target gradient is -logit(p): infinite where p is exactly 0 or 1
    torch.testing.assert_close(y1.grad, y2.grad, atol=TOL[p.dtype]["atol"], rtol=1e-5)


EDGE_P = [0.0, 1e-30, 1e-13, 1 - 1e-7, 1.0]
EDGE_Y = [0.0, 0.5, 1.0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_gradient_equals_torch_at_the_edges(dtype, weighted, reduction):
    """p in {0, 1e-30, 1e-13, 1 - 1e-7, 1} times y in {0, 0.5, 1}: torch's gradient exactly."""
    p = torch.tensor(EDGE_P, dtype=dtype)[:, None].expand(5, 3).contiguous()
    y = torch.tensor(EDGE_Y, dtype=dtype).expand(5, 3).contiguous()
    weight = torch.tensor([0.5, 2.0, 3.0], dtype=dtype) if weighted else None
    p1, p2 = p.clone().requires_grad_(), p.clone().requires_grad_()
    ours = bce(p1, y, weight, reduction)
    ref = F.binary_cross_entropy(p2, y, weight, reduction=reduction)
    torch.testing.assert_close(ours, ref)
    ours.backward(torch.ones_like(ours))
    ref.backward(torch.ones_like(ref))
    assert not p1.grad.isnan().any(), "torch gives 0, not nan, at p = y = 0 and p = y = 1"
    if weighted or reduction == "mean":  # w and 1/N multiply in another order: a rounding
        torch.testing.assert_close(p1.grad, p2.grad, atol=0, rtol=2 * torch.finfo(dtype).eps)
    else:
        assert torch.equal(p1.grad, p2.grad), (p1.grad, p2.grad)


def test_bce_gradient_is_floored_like_torch_not_the_true_derivative():
    """Below p = 1e-12 torch divides by 1e-12, not p: -1e12 at p = 1e-13 where -1/p = -1e13."""
    p = torch.tensor([1e-13, 1e-30, 0.0, 1.0, 0.0, 1.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    bce(p, y, reduction="sum").backward()
    floor = 9.999999960041972e-13  # torch's 1e-12 is a C float
    expected = [-1 / floor, -1 / floor, -1 / floor, 1 / floor, 0.0, 0.0]
    assert p.grad.tolist() == pytest.approx(expected, rel=1e-12)
    # the true derivative at 1e-13 is -1/p = -1e13, ten times torch's, where the loss is 29.93
    assert 10 * p.grad[0].item() == pytest.approx(-1 / p[0].item(), rel=1e-6)
    assert bce(p.detach()[:1], y[:1]).item() == pytest.approx(-math.log(1e-13))


def test_bce_matches_torch_in_half_precision():
    """float16's 1e-12 is 0: both give inf and nan at the edges, in the same places."""
    for dtype in (torch.float16, torch.bfloat16):
        p = torch.tensor(EDGE_P, dtype=dtype)[:, None].expand(5, 3).contiguous()
        y = torch.tensor(EDGE_Y, dtype=dtype).expand(5, 3).contiguous()
        p1, p2 = p.clone().requires_grad_(), p.clone().requires_grad_()
        bce(p1, y, reduction="sum").backward()
        F.binary_cross_entropy(p2, y, reduction="sum").backward()
        torch.testing.assert_close(p1.grad, p2.grad, equal_nan=True)


def test_gradient_of_bce_by_hand():
    """d/dp mean BCE = (p - y) / (p (1 - p)) / N: hand formula against autograd."""
    p = torch.tensor([[0.2, 0.7, 0.9], [0.5, 0.01, 0.99]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[0.0, 1.0, 0.3], [1.0, 0.5, 0.0]], dtype=torch.float64)
    bce(p, y).backward()
    by_hand = (p - y) / (p * (1 - p)) / p.numel()
    torch.testing.assert_close(p.grad, by_hand.detach())


def test_clamp_at_exact_zero_and_one():
    p = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0])
    y = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5])
    ours = bce(p, y, reduction="none")
    torch.testing.assert_close(ours, F.binary_cross_entropy(p, y, reduction="none"))
    assert ours.tolist() == [100.0, 100.0, 0.0, 0.0, 50.0]


def test_mean_with_weight_divides_by_numel_not_weight_sum():
    p = torch.tensor([0.3, 0.6, 0.8])
    y = torch.tensor([0.0, 1.0, 1.0])
    w = torch.tensor([0.0, 2.0, 10.0])
    per_element = -(y * p.log() + (1 - y) * (1 - p).log()) * w
    assert bce(p, y, w).item() == pytest.approx(per_element.sum().item() / 3, rel=1e-6)
    assert bce(p, y, w).item() != pytest.approx(per_element.sum().item() / w.sum().item())


def test_seed_numbers():
    """Known numbers from the seed guides."""
    # the BCELoss how-to's Example 1: its printed tensors give its printed loss 1.2200
    p = torch.tensor([0.3440, 0.7944, 0.8919, 0.3551, 0.9817, 0.8871])
    y = torch.tensor([0.1639, 0.4745, 0.1537, 0.5444, 0.6933, 0.1129])
    assert round(bce(p, y).item(), 4) == 1.2200
    # the PyTorch BCE guide's Example 4: softplus(-1.5) = log(1 + e^-1.5) = 0.2014
    out = bce_with_logits(torch.full([10, 64], 1.5), torch.ones(10, 64), pos_weight=torch.ones(64))
    assert out.item() == pytest.approx(math.log1p(math.exp(-1.5)), abs=1e-7)


def test_pos_weight_equals_weight_for_hard_labels():
    torch.manual_seed(0)
    x = torch.randn(8, 3)
    y = torch.randint(0, 2, (8, 3)).float()
    pw = torch.tensor([0.5, 2.0, 7.0])
    a = bce_with_logits(x, y, pos_weight=pw)
    b = bce_with_logits(x, y, weight=pw * y + (1 - y))
    torch.testing.assert_close(a, b)


def test_pos_weight_per_channel_on_images():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 4, 5)
    y = torch.rand(2, 3, 4, 5)
    pw = torch.tensor([1.0, 2.0, 3.0]).reshape(3, 1, 1)
    ref = F.binary_cross_entropy_with_logits(x, y, pos_weight=pw)
    torch.testing.assert_close(bce_with_logits(x, y, pos_weight=pw), ref)


def test_logits_are_unbounded_and_stable():
    x = torch.tensor([-1000.0, 1000.0, -1000.0, 1000.0, 0.0])
    y = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0])
    ours = bce_with_logits(x, y, reduction="none")
    torch.testing.assert_close(ours, F.binary_cross_entropy_with_logits(x, y, reduction="none"))
    assert ours.tolist() == [1000.0, 1000.0, 0.0, 0.0, pytest.approx(math.log(2))]
    torch.testing.assert_close(log_sigmoid(x), F.logsigmoid(x))


def test_naive_formula_breaks_where_torch_does_not():
    x = torch.tensor([1000.0, -1000.0, 20.0])
    y = torch.tensor([1.0, 1.0, 0.0])
    naive = naive_bce_with_logits(x, y, reduction="none")
    # 0 * log(0) = nan for a confident right answer; log(0) = -inf for a confident wrong one
    assert math.isnan(naive[0]) and math.isinf(naive[1])
    # sigmoid(20) rounds to 1 in float32, so log(1 - p) = -inf although the loss is 20
    assert math.isinf(naive[2])
    ref = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert ref.tolist() == [0.0, 1000.0, 20.0]
    # where sigmoid does not saturate the two formulas agree
    z = torch.linspace(-8, 8, 33, dtype=torch.float64)
    t = torch.rand(33, dtype=torch.float64)
    torch.testing.assert_close(naive_bce_with_logits(z, t), bce_with_logits(z, t))


P = torch.tensor([[0.2, 0.8], [0.5, 0.5]])
Y = torch.tensor([[0.0, 1.0], [1.0, 0.0]])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: bce(P * 2, Y), r"input \(probabilities\) must lie in \[0, 1\]"),
        (lambda: bce(P - 1, Y), r"input \(probabilities\).*first: -0.8"),
        (lambda: bce(torch.full((2, 2), float("nan")), Y), r"input \(probabilities\).*NaN"),
        (lambda: bce(P, Y + 0.5), r"target must lie in \[0, 1\]"),
        (lambda: bce_with_logits(P, Y * 1.5), r"target must lie in \[0, 1\]"),
        (lambda: bce_with_logits(P, Y.clone().fill_(float("nan"))), r"target .* NaN"),
        (lambda: bce(P, Y[0]), r"target shape \(2,\) must equal input shape \(2, 2\)"),
        (lambda: bce_with_logits(P, Y.T.reshape(4)), r"target shape \(4,\)"),
        (lambda: bce(P, Y, weight=torch.ones(3)), r"weight of shape \(3,\) does not broadcast"),
        (lambda: bce(P, Y, weight=torch.ones(2, 2, 2)), r"weight of shape \(2, 2, 2\)"),
        (lambda: bce_with_logits(P, Y, pos_weight=torch.ones(3)), r"pos_weight of shape \(3,\)"),
        (lambda: bce_with_logits(P, Y, pos_weight=3.0), r"pos_weight must be a torch.Tensor"),
        (lambda: bce(P, Y, reduction="avg"), r"reduction must be one of .*'avg'"),
        (lambda: bce_with_logits(P, Y.long()), r"target must be a floating-point tensor"),
        (lambda: bce([0.5], Y), r"input must be a torch.Tensor, got list"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_torch_itself_gives_less_helpful_errors():
    """The reason the helpers check: torch raises RuntimeError or TypeError here."""
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(P * 2, Y)
    with pytest.raises(TypeError):
        F.binary_cross_entropy_with_logits(P, Y, pos_weight=3.0)
    # and no check at all for logits' targets outside [0, 1]: a negative loss
    assert F.binary_cross_entropy_with_logits(torch.tensor([5.0]), torch.tensor([1.5])) < 0


def test_naive_formula_takes_weight_pos_weight_and_reduction_like_torch():
    """Where sigmoid does not saturate the textbook formula is torch's, options included."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, generator=g, dtype=torch.float64) * 3
    y = torch.rand(4, 3, generator=g, dtype=torch.float64)
    w = torch.rand(3, generator=g, dtype=torch.float64) * 2
    pw = torch.tensor([0.5, 2.0, 7.0], dtype=torch.float64)
    for reduction in REDUCTIONS:
        ref = F.binary_cross_entropy_with_logits(x, y, w, pos_weight=pw, reduction=reduction)
        torch.testing.assert_close(naive_bce_with_logits(x, y, w, pw, reduction), ref)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: bce_with_logits(P, Y.long()),
            "target must be a floating-point tensor, got a torch.int64 tensor of shape (2, 2)",
        ),
        (
            lambda: bce_with_logits(P, Y, pos_weight=3.0),
            "pos_weight must be a torch.Tensor, got float 3.0",
        ),
        (
            lambda: bce(P, Y + 0.5),
            "target must lie in [0, 1] with no NaN, but 2 of its 4 elements do not (first: 1.5)",
        ),
        (
            lambda: bce(P, Y, weight=torch.ones(3)),
            "weight of shape (3,) does not broadcast to the input's shape (2, 2) (broadcasting "
            "aligns trailing dimensions: for a per-class [C] tensor on [B, C, H, W] use shape "
            "[C, 1, 1])",
        ),
    ],
)
def test_bad_input_message_in_full(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value) == message


@pytest.mark.parametrize("loss", [bce_with_logits, naive_bce_with_logits])
def test_logit_losses_check_every_argument(loss):
    for kwargs, match in [
        (dict(weight=torch.ones(2, 2, 2)), r"weight of shape \(2, 2, 2\)"),
        (dict(weight=torch.ones(3)), r"weight of shape \(3,\)"),
        (dict(pos_weight=torch.ones(3)), r"pos_weight of shape \(3,\)"),
        (dict(reduction="avg"), r"reduction must be one of .*'avg'"),
    ]:
        with pytest.raises(ValueError, match=match):
            loss(P, Y, **kwargs)
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\]"):
        loss(P, Y * 1.5)
    # logits are not probabilities: any real value is accepted
    assert torch.isfinite(loss(P * 4 - 2, Y))


def test_check_bce_args_defaults_to_the_mean_and_no_weights():
    # a call without the optional arguments is a plain, valid BCE call: it passes silently
    assert check_bce_args(P, Y, probabilities=True) is None
    with pytest.raises(ValueError, match=r"input \(probabilities\) must lie in \[0, 1\]"):
        check_bce_args(P * 2, Y, probabilities=True)
    # without the value check, only types and shapes are looked at
    assert check_bce_args(P * 2, Y + 5, probabilities=True, check_values=False) is None
