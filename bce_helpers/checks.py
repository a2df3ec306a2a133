"""Check cells: compare a hand computation with torch's and print one stable line."""

from __future__ import annotations

import torch


def tolerance_words(atol: float, rtol: float) -> str:
    """The tolerances assert_close was given, as printed: |ours - ref| <= atol + rtol |ref|."""
    if atol and rtol:
        return f"within atol={atol:g}, rtol={rtol:g}"
    if atol:
        return f"within atol={atol:g}"
    if rtol:
        return f"within rtol={rtol:g}"
    return "exactly"


def cmp(name: str, ours, ref, atol: float = 1e-6, rtol: float = 1e-6) -> None:
    """Assert `ours` equals `ref` within tolerance and print one line saying so.

    The printed line shows the values (scalars, to 6 decimals) and the tolerances that were
    used (both atol and rtol when both are non-zero), never the difference itself, so it is
    the same on every machine.
    """
    if atol < 0 or rtol < 0:
        raise ValueError(f"atol and rtol must be >= 0, got atol={atol!r}, rtol={rtol!r}")
    ours_t = torch.as_tensor(ours).detach()
    ref_t = torch.as_tensor(ref).detach().to(dtype=ours_t.dtype, device=ours_t.device)
    torch.testing.assert_close(ours_t, ref_t, atol=atol, rtol=rtol, equal_nan=True)
    within = tolerance_words(atol, rtol)
    if ours_t.numel() == 1:
        print(f"{name}: {ours_t.item():.6f} vs {ref_t.item():.6f}  agree {within}")
    else:
        print(f"{name}: all {ours_t.numel()} values agree {within}")
