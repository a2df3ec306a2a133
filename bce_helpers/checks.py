"""Check cells: compare a hand computation with torch's and print one short line."""

from __future__ import annotations

import torch


def tolerance_words(atol: float, rtol: float) -> str:
    """The tolerances assert_close was given, as words: |ours - ref| <= atol + rtol |ref|."""
    if atol and rtol:
        return f"within atol={atol:g}, rtol={rtol:g}"
    if atol:
        return f"within atol={atol:g}"
    if rtol:
        return f"within rtol={rtol:g}"
    return "exactly"


def cmp(
    name: str,
    ours,
    ref,
    atol: float = 1e-6,
    rtol: float = 1e-6,
    show_tolerance: bool = False,
) -> None:
    """Assert `ours` equals `ref` within tolerance and print one line a learner reads.

    The line is `name: value ✓` (a scalar, to 6 decimals) or `name: all n values ✓`. It
    never shows the difference itself, so it is the same on every machine. The tolerances
    appear in the error when the check fails, and on the line with `show_tolerance=True`,
    where the tolerance is the point.
    """
    if atol < 0 or rtol < 0:
        raise ValueError(f"atol and rtol must be >= 0, got atol={atol!r}, rtol={rtol!r}")
    ours_t = torch.as_tensor(ours).detach()
    ref_t = torch.as_tensor(ref).detach().to(dtype=ours_t.dtype, device=ours_t.device)
    within = tolerance_words(atol, rtol)
    try:
        torch.testing.assert_close(ours_t, ref_t, atol=atol, rtol=rtol, equal_nan=True)
    except AssertionError as error:
        raise AssertionError(f"{name}: the two sides differ, not {within}\n{error}") from None
    suffix = f" ({within})" if show_tolerance else ""
    if ours_t.numel() == 1:
        print(f"{name}: {ours_t.item():.6f} ✓{suffix}")
    else:
        print(f"{name}: all {ours_t.numel()} values ✓{suffix}")
