"""Pictures of a few shapes, made from a random seed: a multi-label data set with no download.

Each grey picture holds any subset of the shapes in SHAPES, each in its own quarter of the
canvas, over light noise. Its labels are a row of 0/1 values, one per shape: several can
be 1 at once, and all can be 0 (an empty picture). Shape c appears in exactly
round(n * frequencies[c]) pictures, so the rarer shapes make an imbalanced problem.
"""

from __future__ import annotations

import torch

SHAPES = ("disk", "square", "plus", "triangle")
FREQUENCIES = (0.5, 0.35, 0.2, 0.1)  # the share of pictures that hold each shape
MIN_SIZE = 12  # the smallest canvas: a quarter must hold a shape and some room to move


def _mask(shape: str, dy: torch.Tensor, dx: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Pixels of `shape` at offsets (dy, dx) from its centre, for half-widths r [N, 1, 1]."""
    if shape == "disk":
        return dy**2 + dx**2 <= r**2
    if shape == "square":  # an outline, one pixel thick
        edge = torch.maximum(dy.abs(), dx.abs())
        return (edge <= r) & (edge > r - 1)
    if shape == "plus":
        return ((dy.abs() <= 0.5) & (dx.abs() <= r)) | ((dx.abs() <= 0.5) & (dy.abs() <= r))
    if shape == "triangle":  # filled, pointing up
        return (dy.abs() <= r) & (dx.abs() <= (dy + r) / 2)
    raise ValueError(f"shape={shape!r} is not one of {SHAPES}")


def shape_pictures(
    n: int,
    size: int = 24,
    frequencies: tuple[float, ...] = FREQUENCIES,
    noise: float = 0.15,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` pictures [n, 1, size, size] in float32 and their labels [n, C] (0. or 1.).

    Drawn on the CPU from a generator seeded with `seed` (the global random state is left
    untouched), so the same seed gives the same pictures on every machine.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} is not allowed: expected an integer >= 1")
    if isinstance(size, bool) or not isinstance(size, int) or size < MIN_SIZE:
        raise ValueError(f"size={size!r} is not allowed: expected an integer >= {MIN_SIZE}")
    if len(frequencies) != len(SHAPES) or not all(0 <= f <= 1 for f in frequencies):
        raise ValueError(
            f"frequencies={frequencies!r} is not allowed: expected {len(SHAPES)} numbers in [0, 1]"
        )
    g = torch.Generator().manual_seed(seed)
    labels = torch.zeros(n, len(SHAPES))
    for c, share in enumerate(frequencies):  # exactly round(n * share) pictures hold shape c
        labels[torch.randperm(n, generator=g)[: round(n * share)], c] = 1.0
    quarter = size / 2
    # each shape gets its own quarter of the canvas, at random, then a small random shift
    quarters = torch.rand(n, len(SHAPES), generator=g).argsort(dim=1)
    shift = (torch.rand(n, len(SHAPES), 2, generator=g) - 0.5) * (quarter / 4)
    half_width = quarter * (0.22 + 0.1 * torch.rand(n, len(SHAPES), generator=g))
    rows = torch.arange(size, dtype=torch.float32).view(1, size, 1)
    cols = torch.arange(size, dtype=torch.float32).view(1, 1, size)
    ink = torch.zeros(n, size, size, dtype=torch.bool)
    for c, shape in enumerate(SHAPES):
        centre_y = (quarters[:, c] // 2) * quarter + quarter / 2 - 0.5 + shift[:, c, 0]
        centre_x = (quarters[:, c] % 2) * quarter + quarter / 2 - 0.5 + shift[:, c, 1]
        drawn = _mask(
            shape,
            rows - centre_y.view(n, 1, 1),
            cols - centre_x.view(n, 1, 1),
            half_width[:, c].view(n, 1, 1),
        )
        ink |= drawn & (labels[:, c] == 1).view(n, 1, 1)
    pictures = ink.float() + noise * torch.randn(n, size, size, generator=g)
    return pictures.unsqueeze(1), labels
