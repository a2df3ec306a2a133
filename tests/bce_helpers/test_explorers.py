"""Notebook 08's threshold explorer: its readout against scikit-learn, its figure drawn."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import confusion_matrix, precision_score, recall_score

from bce_helpers.explorers import threshold_explorer
from tests.bce_helpers.test_metrics import scored_case


@pytest.mark.parametrize("threshold", [0.1, 0.35, 0.5, 0.9])
def test_the_readout_counts_as_scikit_learn(threshold):
    probs, labels = scored_case()
    said = (probs >= threshold).numpy()
    tn, fp, fn, tp = confusion_matrix(labels.numpy(), said, labels=[0, 1]).ravel()
    explorer = threshold_explorer(probs, labels, threshold)
    counts = f"true positives {tp}, false positives {fp}, false negatives {fn}, true negatives {tn}"
    assert counts in explorer.text
    precision = precision_score(labels, said, zero_division=0)
    assert f"precision {precision:.3f}, recall {recall_score(labels, said):.3f}" in explorer.text
    assert explorer.png.startswith(b"\x89PNG")


def test_moving_the_slider_redraws():
    labels = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0])
    probs = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.6])
    explorer = threshold_explorer(probs, labels, 0.5)
    before = explorer.png
    explorer.controls["threshold"].value = 0.3
    assert "threshold t = 0.30" in explorer.text
    assert "true positives 3, false positives 1" in explorer.text
    assert explorer.png != before
