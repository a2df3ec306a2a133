"""bce_helpers.shapes: labels with the stated frequencies, ink where the labels say."""

from __future__ import annotations

import pytest
import torch

from bce_helpers.shapes import FREQUENCIES, SHAPES, shape_pictures


def test_shapes_and_exact_label_counts():
    pictures, labels = shape_pictures(1000, size=16, seed=3)
    assert pictures.shape == (1000, 1, 16, 16) and pictures.dtype == torch.float32
    assert labels.shape == (1000, len(SHAPES))
    assert labels.sum(0).tolist() == [round(1000 * f) for f in FREQUENCIES]
    assert set(labels.unique().tolist()) == {0.0, 1.0}


def test_same_seed_same_pictures_other_seed_other_pictures():
    a, la = shape_pictures(50, seed=1)
    b, lb = shape_pictures(50, seed=1)
    c, _ = shape_pictures(50, seed=2)
    assert torch.equal(a, b) and torch.equal(la, lb) and not torch.equal(a, c)


def test_ink_counts_follow_the_labels():
    pictures, labels = shape_pictures(400, size=20, noise=0.0, seed=0)
    ink = pictures.flatten(1).sum(1)
    empty = labels.sum(1) == 0
    assert (ink[empty] == 0).all(), "a picture with no label has no ink"
    assert (ink[~empty] > 0).all(), "a picture with a label has ink"
    # each shape alone has its own kind of ink: a disk is solid, a square is an outline
    for c, shape in enumerate(SHAPES):
        alone = (labels[:, c] == 1) & (labels.sum(1) == 1)
        assert alone.any(), shape
        assert (pictures[alone] >= 0).all() and (pictures[alone] <= 1).all()


def test_noise_has_the_requested_spread():
    pictures, labels = shape_pictures(300, size=16, frequencies=(0, 0, 0, 0), noise=0.2, seed=9)
    assert labels.sum() == 0
    assert pictures.std().item() == pytest.approx(0.2, rel=0.02)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n=0"),
        ({"n": 5, "size": 8}, "size=8"),
        ({"n": 5, "frequencies": (0.5,)}, "frequencies="),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        shape_pictures(**kwargs)
