"""bce_helpers.saturation against torch.sigmoid itself in each floating-point type: the logit
found rounds to exactly 1, the representable logit just below it does not."""

import math

import pytest
import torch

from bce_helpers.saturation import first_saturating_logit

INTS = {torch.float16: torch.int16, torch.bfloat16: torch.int16}
INTS |= {torch.float32: torch.int32, torch.float64: torch.int64}


def next_below(z: float, dtype: torch.dtype) -> torch.Tensor:
    """The largest value of `dtype` below z (positive floats are ordered like their bits)."""
    bits = torch.tensor([z], dtype=dtype).view(INTS[dtype])
    return (bits - 1).view(dtype)


@pytest.mark.parametrize("dtype", list(INTS))
def test_the_first_saturating_logit_is_where_torch_sigmoid_first_gives_1(dtype):
    z = first_saturating_logit(dtype)
    here = torch.tensor([z], dtype=dtype)
    assert here.item() == z, "a value representable in the type"
    assert torch.sigmoid(here).item() == 1.0
    below = next_below(z, dtype)
    assert below.item() < z and torch.sigmoid(below).item() < 1.0


def test_float32_saturates_where_one_plus_exp_rounds_to_one():
    # 1 + e^-z rounds to 1 once e^-z < 2^-24: z > 24 ln 2 (not the 25 ln 2 of correct rounding)
    assert first_saturating_logit(torch.float32) == pytest.approx(24 * math.log(2), abs=1e-5)
    assert first_saturating_logit() == first_saturating_logit(torch.float32)  # the default


def test_float64_saturates_near_53_ln_2():
    assert first_saturating_logit(torch.float64) == pytest.approx(53 * math.log(2), rel=1e-14)


@pytest.mark.parametrize(
    ("dtype", "expected", "threshold"),
    # the first representable logit past ln(4 / eps - 1): float16 spacing 2^-7 near 8,
    # bfloat16 spacing 2^-5 near 6
    [(torch.float16, 8.3203125, math.log(2**12 - 1)), (torch.bfloat16, 6.25, math.log(2**9 - 1))],
)
def test_half_types_saturate_at_the_nearest_float(dtype, expected, threshold):
    assert first_saturating_logit(dtype) == expected
    spacing = torch.finfo(dtype).eps * 2 ** math.floor(math.log2(expected))
    assert expected - spacing < threshold <= expected


@pytest.mark.parametrize("bad", [torch.int32, torch.bool, torch.complex64, "float32", None])
def test_refuses_what_is_not_a_floating_point_dtype(bad):
    with pytest.raises(ValueError) as refused:
        first_saturating_logit(bad)
    assert str(refused.value) == f"dtype must be a floating-point torch.dtype, got {bad!r}"


def test_refuses_a_floating_point_type_of_another_width():
    with pytest.raises(ValueError) as refused:
        first_saturating_logit(torch.float8_e4m3fn)
    assert str(refused.value) == (
        "dtype must be 16, 32 or 64 bits wide, got torch.float8_e4m3fn (1 B)"
    )


def test_refuses_a_sigmoid_that_never_reaches_1(monkeypatch):
    """The search needs sigmoid(100) = 1; a device whose sigmoid stops short is named."""
    monkeypatch.setattr(torch, "sigmoid", lambda z: torch.full_like(z, 0.5))
    with pytest.raises(ValueError) as refused:
        first_saturating_logit(torch.float32)
    assert str(refused.value) == "torch.sigmoid(100) is not 1 in torch.float32 on cpu"
