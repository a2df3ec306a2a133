"""Notebook 08 (thresholds and calibration): its run at the defaults against the committed
outputs and references computed here: scikit-learn's own split, log w, the ranking kept."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from tests.notebooks.committed_outputs import assert_reproduced

pytestmark = pytest.mark.notebook


def test_its_checked_outputs_are_the_committed_ones(executions):
    assert_reproduced(executions("08"))


def test_its_results(executions):
    r = executions("08").results  # seed 42, 40% of the malignant tumours kept, w = 4
    label = 1 - load_breast_cancer().target
    kept = round(212 * 0.4)
    assert r["positives_kept"] == kept
    # the training split, made again with scikit-learn from the same rows' labels
    rng = np.random.default_rng(42)
    malignant = rng.choice(np.flatnonzero(label == 1), kept, replace=False)
    y = np.concatenate([label[label == 0], label[malignant]])
    _, _, y_train, _ = train_test_split(y, y, test_size=0.5, stratify=y, random_state=42)
    assert r["pos_weight_tumours"] == pytest.approx((y_train == 0).sum() / (y_train == 1).sum())
    # dividing logits by T > 0 keeps the ranking
    assert r["auc_before"] == r["auc_after"] and r["temperature"] > 0
    # at 20,000 blobs the weighted model's logits sit about log w above the plain one's
    assert r["blobs_logit_shift_mean"] == pytest.approx(math.log(4.0), abs=0.1)
    assert r["blobs_decisions_agree"] > 0.99
    assert r["validation_recall"] >= 0.95
    assert r["loss_autocast"] == pytest.approx(r["loss_float32"], abs=0.02)
