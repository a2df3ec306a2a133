"""Precision, recall and F1 by hand, per class and averaged, and thresholds chosen from them.

The by-hand counts are the lesson's (notebook 07 checks them against scikit-learn's
precision_recall_fscore_support); choosing thresholds leans on scikit-learn's
precision_recall_curve.
"""

from __future__ import annotations

import numpy as np
import torch


def _ratio(top: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
    """top / bottom, 0 where bottom is 0 (scikit-learn's zero_division=0)."""
    return torch.where(bottom > 0, top / bottom.clamp(min=1), torch.zeros_like(top))


def confusion_counts(predicted: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """True/false positives and negatives per column of [N, C] (or [N]) 0/1 tensors."""
    if predicted.shape != labels.shape:
        raise ValueError(
            f"predicted {tuple(predicted.shape)} and labels {tuple(labels.shape)} must have "
            "the same shape: one prediction per label"
        )
    guess, truth = predicted.bool(), labels.bool()
    return {
        "tp": (guess & truth).sum(0).double(),
        "fp": (guess & ~truth).sum(0).double(),
        "fn": (~guess & truth).sum(0).double(),
        "tn": (~guess & ~truth).sum(0).double(),
    }


def confusion_at(probabilities: torch.Tensor, labels: torch.Tensor, threshold: float) -> dict:
    """Counts (ints), precision and recall when predicting positive where p >= threshold."""
    counts = confusion_counts(probabilities.flatten() >= threshold, labels.flatten() == 1)
    n = {key: int(value) for key, value in counts.items()}
    n["precision"] = n["tp"] / max(n["tp"] + n["fp"], 1)
    n["recall"] = n["tp"] / max(n["tp"] + n["fn"], 1)
    return n


def f1_from_counts(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    """F1 = 2 TP / (2 TP + FP + FN), 0 where there is nothing to count."""
    return _ratio(2 * tp, 2 * tp + fp + fn)


def precision_recall_f1(predicted: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-class precision, recall and F1 of [N, C] 0/1 predictions, and their averages.

    Macro averages the C per-class values (each class counts the same); micro pools the
    TP, FP and FN of all classes first (classes with more positives and mistakes weigh
    more). A ratio with nothing to count (no predicted or no true positives) is 0, as
    scikit-learn's zero_division=0.
    """
    n = confusion_counts(predicted, labels)
    precision = _ratio(n["tp"], n["tp"] + n["fp"])
    recall = _ratio(n["tp"], n["tp"] + n["fn"])
    f1 = f1_from_counts(n["tp"], n["fp"], n["fn"])
    tp, fp, fn = n["tp"].sum(), n["fp"].sum(), n["fn"].sum()
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "micro_precision": _ratio(tp, tp + fp),
        "micro_recall": _ratio(tp, tp + fn),
        "micro_f1": f1_from_counts(tp, fp, fn),
        "macro_precision": precision.mean(),
        "macro_recall": recall.mean(),
        "macro_f1": f1.mean(),
    }


def best_f1_threshold(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    """The probability threshold (predict positive where p >= it) with the highest F1."""
    from sklearn.metrics import precision_recall_curve  # here: its import is slow

    p = probabilities.detach().cpu().double().flatten().numpy()
    y = labels.detach().cpu().flatten().numpy()
    if y.sum() == 0:  # no positives: no threshold helps; predict none
        return 1.0
    precision, recall, thresholds = precision_recall_curve(y, p)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-300)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def per_class_thresholds(probabilities: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """One best-F1 threshold per column of [N, C] probabilities, as a float32 tensor [C]."""
    return torch.tensor(
        [best_f1_threshold(probabilities[:, c], labels[:, c]) for c in range(labels.shape[1])]
    )


def threshold_for_recall(probabilities: torch.Tensor, labels: torch.Tensor, recall: float) -> float:
    """The highest threshold (predict positive where p >= it) whose recall reaches `recall`."""
    from sklearn.metrics import precision_recall_curve  # here: its import is slow

    if not 0 < recall <= 1:
        raise ValueError(f"recall={recall!r} is not allowed: expected a number in (0, 1]")
    p = probabilities.detach().cpu().double().flatten().numpy()
    y = labels.detach().cpu().flatten().numpy()
    if not (y == 1).any():
        raise ValueError(
            f"labels hold no positive (1): no threshold reaches a recall of {recall!r}"
        )
    _, reached, thresholds = precision_recall_curve(y, p)
    # recall falls as the threshold rises: the last threshold still reaching it is the highest
    ok = np.nonzero(reached[:-1] >= recall - 1e-12)[0]
    return float(thresholds[ok[-1]])
