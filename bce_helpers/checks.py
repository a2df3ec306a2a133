"""Check cells: compare a hand computation with torch's and print one stable line."""

from __future__ import annotations

import torch


def cmp(name: str, ours, ref, atol: float = 1e-6, rtol: float = 1e-6) -> None:
    """Assert `ours` equals `ref` within tolerance and print one line saying so.

    The printed line shows the values (scalars, to 6 decimals) and the tolerance, never
    the difference itself, so it is the same on every machine.
    """
    ours_t = torch.as_tensor(ours).detach()
    ref_t = torch.as_tensor(ref).detach().to(dtype=ours_t.dtype, device=ours_t.device)
    torch.testing.assert_close(ours_t, ref_t, atol=atol, rtol=rtol, equal_nan=True)
    within = f"within {atol:g}" if atol else f"to a relative {rtol:g}"
    if ours_t.numel() == 1:
        print(f"{name}: {ours_t.item():.6f} vs {ref_t.item():.6f}  agree {within}")
    else:
        print(f"{name}: all {ours_t.numel()} values agree {within}")
