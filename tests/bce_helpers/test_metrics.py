"""bce_helpers.metrics against scikit-learn: per-class and averaged precision, recall, F1."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
)

from bce_helpers.metrics import (
    best_f1_threshold,
    confusion_at,
    confusion_counts,
    f1_from_counts,
    per_class_thresholds,
    precision_recall_f1,
    threshold_for_recall,
)


def random_case(seed, n=200, c=4):
    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, c, generator=g) < torch.tensor([0.5, 0.3, 0.1, 0.02])).float()
    predicted = (torch.rand(n, c, generator=g) < 0.3).float()
    return predicted, labels


@pytest.mark.parametrize("seed", range(5))
def test_per_class_and_averages_equal_scikit_learn(seed):
    predicted, labels = random_case(seed)
    ours = precision_recall_f1(predicted, labels)
    y, p = labels.numpy(), predicted.numpy()
    for average in (None, "micro", "macro"):
        ref = precision_recall_fscore_support(y, p, average=average, zero_division=0)
        prefix = "" if average is None else f"{average}_"
        for k, name in enumerate(("precision", "recall", "f1")):
            np.testing.assert_allclose(ours[prefix + name].numpy(), ref[k], atol=1e-12)


def test_a_class_never_predicted_or_never_present_counts_zero_as_scikit_learn():
    labels = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    predicted = torch.tensor([[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    ours = precision_recall_f1(predicted, labels)
    assert ours["precision"].tolist() == [0.0, 0.0] and ours["recall"].tolist() == [0.0, 0.0]
    assert ours["macro_f1"].item() == f1_score(labels, predicted, average="macro", zero_division=0)


def test_confusion_counts_add_up_and_refuse_other_shapes():
    predicted, labels = random_case(7)
    n = confusion_counts(predicted, labels)
    assert (n["tp"] + n["fp"] + n["fn"] + n["tn"]).tolist() == [200.0] * 4
    assert n["tp"].tolist() == (predicted * labels).sum(0).tolist()
    with pytest.raises(ValueError, match="same shape"):
        confusion_counts(predicted[:, 0], labels)


def test_best_f1_threshold_beats_every_other_threshold():
    g = torch.Generator().manual_seed(3)
    labels = (torch.rand(300, generator=g) < 0.3).float()
    probs = (0.3 * labels + 0.7 * torch.rand(300, generator=g)).clamp(0, 1)
    t = best_f1_threshold(probs, labels)
    best = f1_score(labels, probs >= t)
    for other in np.unique(probs.numpy()):
        assert f1_score(labels, probs >= other) <= best + 1e-12
    assert per_class_thresholds(torch.stack([probs, probs], 1), torch.stack([labels] * 2, 1))[
        1
    ].item() == pytest.approx(t)


@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 1.0])
def test_threshold_for_recall_is_the_highest_that_reaches_it(target):
    g = torch.Generator().manual_seed(5)
    labels = (torch.rand(400, generator=g) < 0.2).float()
    probs = (0.4 * labels + 0.6 * torch.rand(400, generator=g)).clamp(0, 1)
    t = threshold_for_recall(probs, labels, target)
    assert recall_score(labels, probs >= t) >= target
    above = probs[probs > t]
    if len(above):  # the next threshold up no longer reaches the target
        assert recall_score(labels, probs >= above.min()) < target
    with pytest.raises(ValueError, match="recall=0"):
        threshold_for_recall(probs, labels, 0)


def test_threshold_for_recall_refuses_labels_with_no_positive():
    # scikit-learn's recall is undefined here: it warns and gives 0 for every threshold
    with pytest.warns(UserWarning):
        assert recall_score(torch.zeros(5), torch.ones(5)) == 0
    with pytest.raises(ValueError, match=r"labels hold no positive \(1\): .* recall of 0.9"):
        threshold_for_recall(torch.rand(5), torch.zeros(5), 0.9)


def scored_case(seed=2, n=150):
    """Probabilities that lean towards 150 labels, a quarter of them positive."""
    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, generator=g) < 0.25).float()
    return (0.35 * labels + 0.65 * torch.rand(n, generator=g)).clamp(0, 1), labels


@pytest.mark.parametrize("threshold", [0.1, 0.35, 0.5, 0.9])
def test_confusion_at_a_threshold_counts_as_scikit_learn(threshold):
    from sklearn.metrics import confusion_matrix

    probs, labels = scored_case()
    said = (probs >= threshold).numpy()
    tn, fp, fn, tp = confusion_matrix(labels.numpy(), said, labels=[0, 1]).ravel()
    n = confusion_at(probs, labels, threshold)
    assert (n["tp"], n["fp"], n["fn"], n["tn"]) == (tp, fp, fn, tn)
    assert n["recall"] == pytest.approx(recall_score(labels, said))
    assert n["precision"] == pytest.approx(precision_score(labels, said, zero_division=0))


def test_f1_from_counts_is_scikit_learns_f1_with_zero_division_0():
    labels = torch.tensor([1, 1, 0, 0, 1, 0, 0, 0])
    for predicted in ([1, 0, 1, 0, 1, 0, 0, 0], [0] * 8, [1] * 8):
        p = torch.tensor(predicted)
        tp, fp = ((p == 1) & (labels == 1)).sum(), ((p == 1) & (labels == 0)).sum()
        fn = ((p == 0) & (labels == 1)).sum()
        ours = f1_from_counts(tp.double(), fp.double(), fn.double()).item()
        assert ours == pytest.approx(f1_score(labels, p, zero_division=0))
    assert f1_from_counts(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(0.0)).item() == 0
