"""Results files: the JSON each notebook writes when `results_path` is set."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the command line reads results without torch
    import torch


def to_jsonable(value: Any) -> Any:
    """Tensors, NumPy values and tuples as plain JSON types."""
    # a tensor or an array exists only where its library is already imported
    torch, np = sys.modules.get("torch"), sys.modules.get("numpy")
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu().tolist()
    elif np is not None and isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write bytes to a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically (see write_bytes_atomic)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def _unwritable(value: Any, where: str) -> tuple[str, Any] | None:
    """Where the first value JSON cannot write sits in `value`, and that value; None if none."""
    if isinstance(value, dict):
        items = ((f"{where}[{k!r}]", v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    elif value is None or isinstance(value, str | int | float):
        return None
    else:
        return where, value
    for place, item in items:
        found = _unwritable(item, place)
        if found is not None:
            return found
    return None


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write JSON atomically (see write_text_atomic). A value JSON cannot hold is refused,
    naming where it sits, before anything is written."""
    plain = to_jsonable(data)
    found = _unwritable(plain, "data")
    if found is not None:
        where, value = found
        raise TypeError(
            f"{where} is {type(value).__name__} {value!r}, which JSON cannot hold: results hold "
            "numbers, strings, booleans, None, and lists, tuples, dicts, tensors or NumPy "
            "arrays of them"
        )
    return write_text_atomic(path, json.dumps(plain, indent=2, allow_nan=True) + "\n")


def write_results(
    path: str | os.PathLike,
    notebook: str,
    params: dict[str, Any],
    device: torch.device | str,
    numbers: dict[str, Any],
) -> Path:
    """Write a notebook's results: its parameters, torch version, device and numbers."""
    import torch

    record = {
        "notebook": notebook,
        "params": params,
        "torch_version": torch.__version__,
        "device": str(device),
        **numbers,
    }
    return write_json_atomic(path, record)


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read a results JSON written by `write_results`."""
    return json.loads(Path(path).read_text())
