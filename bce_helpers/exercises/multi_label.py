"""The exercises of notebook 07 (multi label): graders with feedback in the lesson's terms."""

from __future__ import annotations

from collections.abc import Callable

import torch

from bce_helpers.exercises.grading import (
    Exercise,
    call_answer,
    listed,
    match,
    wrong,
)
from bce_helpers.metrics import f1_from_counts


def _macro_micro_f1(fn: Callable) -> str:
    tp = torch.tensor([30.0, 5.0, 0.0, 2.0])
    fp = torch.tensor([10.0, 1.0, 0.0, 6.0])
    fn_ = torch.tensor([5.0, 15.0, 0.0, 8.0])
    per_label = f1_from_counts(tp, fp, fn_).double()
    macro = per_label.mean()
    micro = f1_from_counts(tp.sum(), fp.sum(), fn_.sum()).double()
    value = call_answer(fn, tp, fp, fn_).flatten()
    if value.numel() != 2:
        raise wrong(
            f"your function returns {value.numel()} values: return the pair (macro F1, micro F1)"
        )
    if torch.isnan(value[0]):
        raise wrong(
            "your macro F1 is nan: the third label has no true positive, false positive or "
            "false negative, so its 2 TP / (2 TP + FP + FN) is 0 / 0; count it as 0"
        )
    precision = tp / (tp + fp).clamp(min=1)
    recall = tp / (tp + fn_).clamp(min=1)
    p_mean, r_mean = precision.mean(), recall.mean()
    match(
        value,
        torch.stack([macro, micro]),
        {
            "the two are swapped: return (macro F1, micro F1)": torch.stack([micro, macro]),
            "your macro F1 leaves out the label with nothing to count: macro averages over all "
            "C labels, that one with F1 = 0": torch.stack([per_label[[0, 1, 3]].mean(), micro]),
            "your macro F1 is the F1 of the mean precision and mean recall: macro F1 is the "
            "mean of the per-label F1 values": torch.stack(
                [2 * p_mean * r_mean / (p_mean + r_mean), micro]
            ).double(),
            "your micro F1 is the mean of the per-label F1 values, the macro one: micro adds "
            "up TP, FP and FN over the labels first": torch.stack([macro, macro]),
        },
        f"for tp = {listed(tp)}, fp = {listed(fp)}, fn = {listed(fn_)} your pair differs",
    )
    return (
        f"macro F1 {macro.item():.3f} (each label counts the same), "
        f"micro F1 {micro.item():.3f} (the common labels weigh more)."
    )


def _pos_weight_columns(fn: Callable) -> str:
    cases = (
        torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),
        torch.tensor(  # square: N = C, where a weight per example has the right shape
            [[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]]
        ),
    )
    for labels in cases:
        n, c = labels.shape
        positives = labels.sum(0)
        ref = ((n - positives) / positives).double()
        value = call_answer(fn, labels)
        if value.shape == (n,) and n != c:
            raise wrong(
                f"your weights have shape [{n}], one per example: count over the examples "
                f"(dim 0) to get one weight per label, shape [{c}]"
            )
        if value.numel() == 1:
            raise wrong(
                f"your answer is one number for all labels: count each column on its own, "
                f"shape [{c}]"
            )
        per_example = labels.sum(1)
        match(
            value,
            ref,
            {
                f"with {n} examples and {c} labels your [N] weights have the shape of [C] and "
                "broadcast silently: sum over dim 0 (the examples), not dim 1": (
                    (c - per_example) / per_example
                ).double(),
                "upside down: pos_weight is negatives over positives, so a rare label gets a "
                "weight above 1": (positives / (n - positives)).double(),
                "that is the share of negatives; pos_weight is negatives over positives": (
                    (n - positives) / n
                ).double(),
                "that is the share of positives; pos_weight is negatives over positives": (
                    positives / n
                ).double(),
            },
            f"for labels {listed(labels)} your weights differ",
        )
    return "Negatives over positives, one weight per column: shape [C]."


EXERCISES: dict[str, Exercise] = {
    "07.1": Exercise("macro and micro F1 from the counts", _macro_micro_f1),
    "07.2": Exercise("pos_weight for each label", _pos_weight_columns),
}
