"""Notebooks 07 and 08 through papermill at small parameters, results against references
computed here: the label counts the data promise, scikit-learn's own split, log w."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from bce_helpers.shapes import FREQUENCIES

pytestmark = pytest.mark.notebook


def test_07_values(run_notebook):
    n = 300
    r = run_notebook("07", n_images=n, epochs=3, smoothing=0.2)
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
    assert r["params"]["smoothing"] == 0.2


def test_08_values(run_notebook):
    r = run_notebook("08", seed=3, malignant_kept=0.5, n_blobs=20_000, pos_weight=3.0, steps=200)
    label = 1 - load_breast_cancer().target
    kept = round(212 * 0.5)
    assert r["positives_kept"] == kept
    # the training split, made again with scikit-learn from the same rows' labels
    rng = np.random.default_rng(3)
    malignant = rng.choice(np.flatnonzero(label == 1), kept, replace=False)
    y = np.concatenate([label[label == 0], label[malignant]])
    _, _, y_train, _ = train_test_split(y, y, test_size=0.5, stratify=y, random_state=3)
    assert r["pos_weight_tumours"] == pytest.approx((y_train == 0).sum() / (y_train == 1).sum())
    # dividing logits by T > 0 keeps the ranking
    assert r["auc_before"] == r["auc_after"] and r["temperature"] > 0
    # at 20,000 blobs the weighted model's logits sit about log w above the plain one's
    assert r["blobs_logit_shift_mean"] == pytest.approx(math.log(3.0), abs=0.1)
    assert r["blobs_decisions_agree"] > 0.99
    assert r["validation_recall"] >= 0.95
    assert r["loss_autocast"] == pytest.approx(r["loss_float32"], abs=0.02)
