"""The exercises of notebook 08 (thresholds, calibration): graders, feedback in its terms."""

from __future__ import annotations

from collections.abc import Callable

import torch

from bce_helpers.calibration import expected_calibration_error, reliability_bins
from bce_helpers.exercises.grading import (
    Exercise,
    call_answer,
    expect_one_value,
    match,
    number_answer,
    typed_match,
    wrong,
)


def _cost_threshold(answer: object) -> str:
    value = number_answer(answer)
    ref = 1 / (1 + 9)
    mistakes = {
        0.9: "upside down: 0.9 is where a false alarm would cost 9 times a miss. Here a miss "
        "costs more, so say malignant sooner, below 0.5: at p the costs are 9 p for benign "
        "and 1 - p for malignant",
        0.5: "0.5 weighs a miss and a false alarm the same; here a miss costs 9 times more",
        1 / 9: "1/9 is where the odds p / (1 - p) reach 1/9; the question asks for the "
        "probability p",
    }
    if typed_match(value, ref):
        return "Say malignant above p = 1 / (1 + 9) = 0.1: the costs 9 p and 1 - p are equal there."
    for mistaken, message in mistakes.items():
        if typed_match(value, mistaken):
            raise wrong(message)
    raise wrong(
        f"your threshold is {value:.3g}: find the p where the expected costs 9 p (say benign) "
        "and 1 - p (say malignant) are equal"
    )


_P08 = torch.tensor([0.05, 0.08, 0.12, 0.32, 0.45, 0.5, 0.55, 0.68, 0.72, 0.91, 0.95, 0.97])
_Y08 = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0])


def _ece_with_edges_up(p: torch.Tensor, y: torch.Tensor, n_bins: int) -> torch.Tensor:
    """The ECE with a probability on an edge put in the bin above it: the common slip."""
    index = (p * n_bins).long().clamp(max=n_bins - 1)
    count = torch.bincount(index, minlength=n_bins).double()
    kept = count > 0
    predicted = torch.bincount(index, weights=p.double(), minlength=n_bins)[kept] / count[kept]
    observed = torch.bincount(index, weights=y.double(), minlength=n_bins)[kept] / count[kept]
    return (count[kept] / count.sum() * (observed - predicted).abs()).sum()


def _ece(fn: Callable) -> str:
    for n_bins in (10, 4):
        bins = reliability_bins(_P08, _Y08, n_bins)  # an edge goes to the bin below
        count, gap = bins["count"], bins["observed"] - bins["predicted"]
        ref = expected_calibration_error(_P08, _Y08, n_bins)
        value = call_answer(fn, _P08, _Y08, n_bins)
        expect_one_value(value, len(_P08), "the ECE")
        if torch.isnan(value).any():
            raise wrong(
                "your ECE is nan: an empty bin has no mean (0 / 0); leave empty bins out, "
                "their weight is 0 anyway"
            )
        match(
            value.flatten()[0],
            ref,
            {
                "your bins count the same: weight each bin's gap by its share of the "
                "predictions": gap.abs().mean(),
                "your gaps have signs, so over- and under-confident bins cancel: take "
                "|observed - predicted|": (count / count.sum() * gap).sum(),
                "that is the largest gap (the maximum calibration error); the ECE averages "
                "the gaps, weighted by the bins' sizes": gap.abs().max(),
                "a probability on an edge, 0.5 here, goes to the bin below it (as scikit-learn's "
                "calibration_curve bins): use torch.bucketize, or ceil(p n) - 1": (
                    _ece_with_edges_up(_P08, _Y08, n_bins)
                ),
            },
            f"with n_bins = {n_bins} your ECE differs",
        )
    return "The gaps |observed - predicted|, weighted by each bin's share, as the lesson's ECE."


EXERCISES: dict[str, Exercise] = {
    "08.1": Exercise("a threshold for unequal costs", _cost_threshold),
    "08.2": Exercise("the expected calibration error", _ece),
}
