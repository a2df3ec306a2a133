"""Notebook 02 (module or function): its run at the defaults against the committed outputs
and against torch; its rule on the number of elements."""

import pytest
import torch
import torch.nn.functional as F

from bce_helpers.params import check_params
from tests.notebooks.committed_outputs import assert_reproduced

COMMON = {"seed": 1, "device": "cpu", "results_path": None}


@pytest.mark.notebook
def test_its_checked_outputs_are_the_committed_ones(executions):
    assert_reproduced(executions("02"))


@pytest.mark.notebook
def test_its_results(executions):
    r = executions("02").results
    torch.manual_seed(42)  # the default seed, and the default shape: 3 rows, 2 columns
    x, t = torch.randn(3, 2), torch.rand(3, 2)
    expected = F.binary_cross_entropy(torch.sigmoid(x), t).item()
    assert r["functional_loss"] == pytest.approx(expected, abs=1e-6)
    assert r["module_loss"] == r["functional_loss"]


@pytest.mark.notebook
def test_the_default_shape_draws_notebook_01s_numbers(executions):
    """With 3 x 2 the notebook's loss is notebook 01's Example 1 loss (drawn 2 x 3)."""
    text = executions("02").printed()
    torch.manual_seed(42)
    ex1 = F.binary_cross_entropy(torch.sigmoid(torch.randn(2, 3)), torch.rand(2, 3)).item()
    assert f"loss by hand = F.binary_cross_entropy: {ex1:.6f} ✓" in text


def test_it_refuses_more_than_1e7_elements():
    accepted = check_params("02_functional_bce", {**COMMON, "rows": 10_000, "cols": 1_000})
    assert accepted["rows"] * accepted["cols"] == 10_000_000
    with pytest.raises(ValueError, match=r"rows=10000, cols=1001 are not allowed together"):
        check_params("02_functional_bce", {**COMMON, "rows": 10_000, "cols": 1_001})
