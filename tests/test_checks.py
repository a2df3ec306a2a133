"""checks.cmp: passes and says so in one machine-independent line, or raises."""

import pytest
import torch

from bce_helpers.checks import cmp


def test_cmp_prints_values_and_tolerance(capsys):
    cmp("scalar", torch.tensor(0.5), 0.5 + 1e-7)
    cmp("tensor", torch.ones(3), torch.ones(3), atol=1e-3)
    cmp("relative", torch.tensor([1e6]), torch.tensor([1e6 + 0.05]), atol=0, rtol=1e-7)
    assert capsys.readouterr().out.splitlines() == [
        "scalar: 0.500000 vs 0.500000  agree within 1e-06",
        "tensor: all 3 values agree within 0.001",
        "relative: 1000000.000000 vs 1000000.062500  agree to a relative 1e-07",
    ]


def test_cmp_raises_on_a_difference_beyond_tolerance(capsys):
    with pytest.raises(AssertionError):
        cmp("off", torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.001]), atol=1e-4, rtol=0)
    with pytest.raises(AssertionError):
        cmp("relative", torch.tensor(1.0), torch.tensor(1.0 + 1e-6), atol=0, rtol=1e-7)
    assert capsys.readouterr().out == ""
