"""Notebook 07 (multi-label): its run at the defaults against the committed outputs and
references computed here: the label counts the data promise, a constant guess's loss."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bce_helpers.shapes import FREQUENCIES
from tests.notebooks.committed_outputs import assert_reproduced

pytestmark = pytest.mark.notebook


def test_its_checked_outputs_are_the_committed_ones(executions):
    assert_reproduced(executions("07"))


def test_its_results(executions):
    r = executions("07").results
    n = 1500  # the default number of images, half of them held out
    positives = [round(n * f) for f in FREQUENCIES]
    assert r["pos_weight"] == pytest.approx([(n - p) / p for p in positives], rel=1e-6)
    assert len(r["thresholds"]) == len(FREQUENCIES)
    assert all(0 <= t <= 1 for t in r["thresholds"])
    # a constant guess q = each shape's training share, scored on the test set's shares s
    test_shares = [round(n // 2 * f) / (n // 2) for f in FREQUENCIES]
    cross = [
        -(s * math.log(q) + (1 - s) * math.log(1 - q))
        for s, q in zip(test_shares, FREQUENCIES, strict=True)
    ]
    assert r["chance_loss"] == pytest.approx(np.mean(cross), abs=1e-5)
    assert 0 <= r["plain_macro_f1"] <= 1 and 0 <= r["ece_plain"] <= 1
    assert r["params"]["smoothing"] == 0.1
