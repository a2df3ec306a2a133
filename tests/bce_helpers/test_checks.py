"""checks.cmp: passes and says so in one machine-independent line, or raises."""

import pytest
import torch

from bce_helpers.checks import cmp


def test_cmp_prints_one_short_line(capsys):
    cmp("scalar", torch.tensor(0.5), 0.5 + 1e-7)
    cmp("tensor", torch.ones(3), torch.ones(3), atol=1e-3)
    cmp("loosened", torch.tensor([2.0, 3.0]), torch.tensor([2.002, 3.0]), rtol=1.5e-3)
    cmp("absolute", torch.ones(2), torch.ones(2) + 1e-4, atol=1e-3, rtol=0)
    cmp("relative", torch.tensor([1e6]), torch.tensor([1e6 + 0.05]), atol=0, rtol=1e-7)
    cmp("exact", torch.tensor([1.0, float("nan")]), torch.tensor([1.0, float("nan")]), 0, 0)
    cmp("shown", torch.tensor(0.25), 0.25 + 1e-4, atol=1e-3, rtol=0, show_tolerance=True)
    assert capsys.readouterr().out.splitlines() == [
        "scalar: 0.500000 ✓",
        "tensor: all 3 values ✓",
        "loosened: all 2 values ✓",
        "absolute: all 2 values ✓",
        "relative: 1000000.000000 ✓",
        "exact: all 2 values ✓",
        "shown: 0.250000 ✓ (within atol=0.001)",
    ]


def test_cmp_uses_the_tolerances_it_prints(capsys):
    # 2.002 vs 2.0 is 1e-3 relative: inside rtol 1.5e-3, outside the default 1e-6
    differ = r"default: the two sides differ, not within atol=1e-06, rtol=1e-06"
    with pytest.raises(AssertionError, match=differ):
        cmp("default", torch.tensor(2.0), torch.tensor(2.002))
    with pytest.raises(AssertionError):
        cmp("off", torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.001]), atol=1e-4, rtol=0)
    with pytest.raises(AssertionError):
        cmp("relative", torch.tensor(1.0), torch.tensor(1.0 + 1e-6), atol=0, rtol=1e-7)
    with pytest.raises(AssertionError):
        cmp("exact", torch.tensor(1.0), torch.tensor(1.0 + 1e-7), atol=0, rtol=0)
    assert capsys.readouterr().out == ""


def test_cmp_refuses_a_negative_tolerance():
    with pytest.raises(ValueError, match=r"atol=-1e-06"):
        cmp("bad", torch.tensor(1.0), torch.tensor(1.0), atol=-1e-6)


def test_cmp_compares_in_the_dtype_of_ours(capsys):
    # torch itself refuses to compare a float32 tensor with an int64 or float64 one
    with pytest.raises(AssertionError, match="dtype"):
        torch.testing.assert_close(torch.tensor(3.0), torch.as_tensor(3))
    # cmp casts the reference to ours' dtype first: 0.1 rounds to the same float32 either way
    cmp("int", torch.tensor(3.0), 3)
    cmp("float64", torch.tensor([0.1, 0.2]), torch.tensor([0.1, 0.2], dtype=torch.float64), 0, 0)
    assert capsys.readouterr().out.splitlines() == [
        "int: 3.000000 ✓",
        "float64: all 2 values ✓",
    ]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cmp_moves_the_reference_to_the_device_of_ours():
    with pytest.raises(AssertionError, match="device"):
        torch.testing.assert_close(torch.ones(2, device="cuda"), torch.ones(2))
    cmp("cuda", torch.ones(2, device="cuda"), torch.ones(2))
