"""Where a floating-point sigmoid rounds to exactly 1: a search over representable logits."""

from __future__ import annotations

import torch

_BITS = {8: torch.int64, 4: torch.int32, 2: torch.int16}


def _check_float_dtype(dtype: object) -> None:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    if dtype.itemsize not in _BITS:
        raise ValueError(f"dtype must be 16, 32 or 64 bits wide, got {dtype} ({dtype.itemsize} B)")


def first_saturating_logit(
    dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> float:
    """The smallest logit z representable in `dtype` with torch.sigmoid(z) == 1 there.

    Positive floats are ordered like their bit patterns, so this bisects the bit patterns
    between 0 and 100 (where every type's sigmoid is 1): exact, about 60 sigmoid calls.
    """
    _check_float_dtype(dtype)
    ints = _BITS[dtype.itemsize]

    def as_float(bits: int) -> torch.Tensor:
        return torch.tensor([bits], dtype=ints).view(dtype).to(device)

    def bits_of(value: float) -> int:
        return int(torch.tensor([value], dtype=dtype).view(ints).item())

    low, high = bits_of(0.0), bits_of(100.0)  # sigmoid(0) = 0.5 < 1, sigmoid(100) = 1
    if torch.sigmoid(as_float(high)).item() != 1.0:
        raise ValueError(f"torch.sigmoid(100) is not 1 in {dtype} on {device}")
    while high - low > 1:
        middle = (low + high) // 2
        if torch.sigmoid(as_float(middle)).item() == 1.0:
            high = middle
        else:
            low = middle
    return as_float(high).item()
