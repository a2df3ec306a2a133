"""Notebook parameters: what each notebook accepts, checked before any work is done.

Every notebook's parameters cell is followed by one call, ``setup(NOTEBOOK, **params)``,
that checks each value against the notebook's spec here, seeds every random source,
picks the device and prints one line saying what it chose.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bce_helpers.results import write_results

if TYPE_CHECKING:  # imported where used: the command line checks parameters without torch
    import torch

_INVALID = object()  # what a rule's coerce() returns for a value it refuses


@dataclass(frozen=True)
class Number:
    """An int (or, with real=True, a float) within optional bounds."""

    real: bool = False
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: the value must be strictly greater than `low`

    def allowed(self) -> str:
        kind = "a number" if self.real else "an integer"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low!r}")
        if self.high is not None:
            parts.append(f"<= {self.high!r}")
        return kind + (" " + " and ".join(parts) if parts else "")

    def coerce(self, value: Any) -> Any:
        ok_types = (int, float) if self.real else (int,)
        if isinstance(value, bool) or not isinstance(value, ok_types):
            return _INVALID
        if self.real:
            value = float(value)
            if not math.isfinite(value):
                return _INVALID
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return _INVALID
        if self.high is not None and value > self.high:
            return _INVALID
        return value


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values."""

    choices: tuple[Any, ...]

    def allowed(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def coerce(self, value: Any) -> Any:
        return value if value in self.choices else _INVALID


@dataclass(frozen=True)
class OptionalPath:
    """None, or a file path given as a string."""

    def allowed(self) -> str:
        return "None or a file path (str)"

    def coerce(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, (str, os.PathLike)) and str(value):
            return str(value)
        return _INVALID


@dataclass(frozen=True)
class Flag:
    """True or False; with needs_device, True only where the run's device is of that type."""

    needs_device: str | None = None

    def allowed(self) -> str:
        return "True or False"

    def coerce(self, value: Any) -> Any:
        return value if isinstance(value, bool) else _INVALID


@dataclass(frozen=True)
class Together:
    """A rule on several parameters at once: `holds(params)` must be true, for `why`."""

    names: tuple[str, ...]
    holds: Callable[[dict[str, Any]], bool]
    why: str

    def check(self, params: dict[str, Any]) -> None:
        """Raise a ValueError naming the parameters, their values and why, if it fails."""
        if not self.holds(params):
            values = ", ".join(f"{n}={params[n]!r}" for n in self.names)
            raise ValueError(f"parameters {values} are not allowed together: {self.why}")


DEVICES = ("auto", "cpu", "cuda", "mps")
COMMON: dict[str, Any] = {
    "seed": Number(low=0, high=2**32 - 1),
    "device": Choice(DEVICES),
    "results_path": OptionalPath(),
}

# What each notebook accepts beyond the common three.
SPECS: dict[str, dict[str, Any]] = {
    "01_bce_loss": {"n_points": Number(low=3, high=100_000)},
    "02_functional_bce": {"rows": Number(low=1, high=10_000), "cols": Number(low=1, high=10_000)},
    "03_bce_with_logits": {
        "z_max": Number(real=True, low=0, low_open=True, high=1_000_000),
        "n_points": Number(low=3, high=1_000_000),
    },
    "04_pos_weight": {
        "pos_weight": Number(real=True, low=0, low_open=True, high=10_000),
        "positive_fraction": Number(real=True, low=0, low_open=True, high=0.5),
        "n_samples": Number(low=100, high=10_000_000),
        "steps": Number(low=1, high=100_000),
        "lr": Number(real=True, low=0, low_open=True, high=10),
    },
    "05_mlp_training": {
        "n_samples": Number(low=64, high=1_000_000),
        "image_size": Number(low=1, high=512),
        "batch_size": Number(low=1, high=1_000_000),
        "epochs": Number(low=1, high=1000),
        "lr": Number(real=True, low=0, low_open=True, high=10),
        "loss": Choice(("bce", "bce_with_logits", "fused_bce_with_logits")),
        "dataset": Choice(("fakedata", "learnable")),
        "test_fraction": Number(real=True, low=0, low_open=True, high=0.5),
        "log_every": Number(low=1, high=1_000_000),
        "cuda_graph": Flag(needs_device="cuda"),
    },
    "06_circles": {
        "framework": Choice(("torch", "keras")),
        "n_samples": Number(low=10, high=1_000_000),
        "noise": Number(real=True, low=0, high=10),
        "epochs": Number(low=1, high=100_000),
        "batch_size": Number(low=1, high=1_000_000),
        "lr": Number(real=True, low=0, low_open=True, high=10),
    },
    "07_multi_label": {
        "n_images": Number(low=100, high=100_000),
        "image_size": Number(low=12, high=64),
        "epochs": Number(low=1, high=1000),
        "batch_size": Number(low=1, high=100_000),
        "lr": Number(real=True, low=0, low_open=True, high=1),
        "smoothing": Number(real=True, low=0, high=0.5),
    },
    "08_thresholds_calibration": {
        "malignant_kept": Number(real=True, low=0, low_open=True, high=1),
        "target_recall": Number(real=True, low=0, low_open=True, high=1),
        "focal_alpha": Number(real=True, low=0, high=1),
        "focal_gamma": Number(real=True, low=0, high=10),
        "n_bins": Number(low=2, high=50),
        "pos_weight": Number(real=True, low=0, low_open=True, high=1000),
        "positive_fraction": Number(real=True, low=0, low_open=True, high=0.5),
        "n_blobs": Number(low=100, high=1_000_000),
        "steps": Number(low=1, high=100_000),
        "lr": Number(real=True, low=0, low_open=True, high=10),
    },
    "09_bce_at_scale": {
        "max_log2_size": Number(low=10, high=28),
        "dtype": Choice(("float32", "bfloat16", "float16")),
        "repeats": Number(low=1, high=1000),
    },
}


# Rules on combinations of one notebook's parameters, checked after each value's own rule.
TOGETHER: dict[str, tuple[Together, ...]] = {
    "02_functional_bce": (
        Together(
            ("rows", "cols"),
            lambda p: p["rows"] * p["cols"] <= 10_000_000,
            "rows * cols must be at most 10,000,000: the example holds about a dozen float32 "
            "copies of its rows x cols tensors and computes some twenty losses over them, so "
            "its memory and its work grow with rows * cols, for a lesson that a small tensor "
            "shows as well",
        ),
    ),
    "04_pos_weight": (
        Together(
            ("n_samples", "positive_fraction"),
            lambda p: round(p["n_samples"] * p["positive_fraction"]) >= 10,
            "the data would hold fewer than 10 positives (round(n_samples * "
            "positive_fraction)); precision, recall and the optimum logit need at least 10",
        ),
    ),
    "05_mlp_training": (
        Together(
            ("log_every", "n_samples", "batch_size", "epochs"),
            lambda p: p["log_every"] <= p["epochs"] * math.ceil(p["n_samples"] / p["batch_size"]),
            "log_every must not exceed the number of mini-batches in the whole run "
            "(epochs * ceil(n_samples / batch_size)), or no mean loss is ever recorded",
        ),
        Together(
            ("n_samples", "test_fraction"),
            lambda p: round(p["n_samples"] * p["test_fraction"]) >= 10,
            "the held-out set would hold fewer than 10 images (round(n_samples * "
            "test_fraction)); a held-out accuracy and loss need at least 10",
        ),
    ),
    "06_circles": (
        Together(
            ("epochs", "n_samples", "batch_size"),
            lambda p: p["epochs"] * math.ceil(p["n_samples"] // 2 / p["batch_size"]) <= 10_000,
            "epochs * ceil((n_samples // 2) / batch_size), the optimizer steps, must be at most "
            "10,000, about twice the guide's 4,800: Keras on its torch backend runs each step "
            "as a chain of Python calls, however small the batch, so the run's time grows with "
            "the steps",
        ),
        Together(
            ("epochs", "n_samples"),
            lambda p: p["epochs"] * p["n_samples"] <= 20_000_000,
            "epochs * n_samples, the points passed through the model (each epoch trains on "
            "one half and evaluates the other), must be at most 20,000,000: the run's work "
            "grows with the points however few the steps, and the bound keeps a run of large "
            "batches as short as one of many small steps",
        ),
    ),
    "07_multi_label": (
        Together(
            ("epochs", "n_images", "batch_size"),
            lambda p: p["epochs"] * math.ceil(p["n_images"] / p["batch_size"]) <= 20_000,
            "epochs * ceil(n_images / batch_size), the optimizer steps per model, must be at "
            "most 20,000: the notebook trains three models, so a run takes three times that "
            "many steps",
        ),
        Together(
            ("epochs", "n_images", "image_size"),
            lambda p: p["epochs"] * p["n_images"] * p["image_size"] ** 2 <= 500_000_000,
            "epochs * n_images * image_size**2, the pixels each model reads, must be at most "
            "500,000,000: three models train, each reading that many pixels, so the run's work "
            "grows with it however few the steps",
        ),
    ),
    "08_thresholds_calibration": (
        Together(
            ("malignant_kept",),
            lambda p: round(212 * p["malignant_kept"]) >= 40,
            "round(212 * malignant_kept), the malignant cases kept of the data set's 212, must "
            "be at least 40, so that validation and test (a quarter each) hold about 10 each: "
            "a threshold for a target recall needs some positives to count",
        ),
        Together(
            ("n_blobs", "positive_fraction"),
            lambda p: round(p["n_blobs"] * p["positive_fraction"]) >= 10,
            "the blobs would hold fewer than 10 positives (round(n_blobs * "
            "positive_fraction)); a logistic regression and its decisions need at least 10",
        ),
    ),
    "09_bce_at_scale": (
        Together(
            ("max_log2_size", "repeats"),
            lambda p: p["repeats"] * 2 ** p["max_log2_size"] <= 2**28,
            "repeats * 2**max_log2_size must be at most 2**28: each size is timed repeats + 1 "
            "times per method and pass, so the elements every method reads grow with "
            "repeats * 2**max_log2_size (at max_log2_size=24 repeats may be up to 16); for "
            "longer measurements use benchmarks/bench_bce.py",
        ),
    ),
}


def spec_for(notebook: str) -> dict[str, Any]:
    """The full parameter spec of a notebook, common parameters first."""
    if notebook not in SPECS:
        raise ValueError(f"notebook must be one of {sorted(SPECS)}, got {notebook!r}")
    return {**COMMON, **SPECS[notebook]}


def check_params(notebook: str, params: dict[str, Any]) -> dict[str, Any]:
    """Return the parameters with their types normalised, or raise a ValueError naming one."""
    spec = spec_for(notebook)
    unknown = sorted(set(params) - set(spec))
    missing = sorted(set(spec) - set(params))
    if unknown or missing:
        raise ValueError(
            f"{notebook}: unknown parameter(s) {unknown}, missing {missing}; "
            f"declared parameters: {list(spec)}"
        )
    checked = {}
    for name, rule in spec.items():
        value = rule.coerce(params[name])
        if value is _INVALID:
            raise ValueError(
                f"parameter {name}={params[name]!r} is not allowed: expected {rule.allowed()}"
            )
        checked[name] = value
    for together in TOGETHER.get(notebook, ()):
        together.check(checked)
    return checked


def available_devices() -> list[str]:
    """Devices torch can use on this machine, best first."""
    import torch

    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return [*found, "cpu"]


def resolve_device(device: str) -> torch.device:
    """Turn 'auto' into the best device here; refuse one this machine lacks."""
    import torch

    here = available_devices()
    if device == "auto":
        return torch.device(here[0])
    if device not in here:
        raise ValueError(
            f"parameter device={device!r} is not available on this machine: "
            f"use 'auto' or one of {here}"
        )
    return torch.device(device)


def check_device_needs(notebook: str, params: dict[str, Any], device: torch.device) -> None:
    """Refuse a flag set to True that needs another device than the one chosen."""
    for name, rule in spec_for(notebook).items():
        needs = rule.needs_device if isinstance(rule, Flag) and params[name] else None
        if needs and device.type != needs:
            raise ValueError(
                f"parameter {name}=True needs device {needs!r}, but "
                f"device={params['device']!r} runs on {device.type!r} here: "
                f"set {name}=False, or run where {needs} is available"
            )


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's random generators."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class NotebookRun:
    """The checked parameters and chosen device of one notebook execution."""

    notebook: str
    params: dict[str, Any]
    device: torch.device

    def save_results(self, **numbers: Any) -> None:
        """Write the results JSON if results_path was given; do nothing otherwise."""
        path = self.params["results_path"]
        if path is not None:  # the file records its own name, not this machine's folders
            params = {**self.params, "results_path": os.path.basename(path)}
            write_results(path, self.notebook, params, self.device, numbers)


def setup(notebook: str, **params: Any) -> NotebookRun:
    """Check all parameters, seed, pick the device and print one line saying so."""
    import torch

    checked = check_params(notebook, params)
    device = resolve_device(checked["device"])
    check_device_needs(notebook, checked, device)
    seed_everything(checked["seed"])
    print(f"device={device.type} seed={checked['seed']} torch={torch.__version__}")
    return NotebookRun(notebook, checked, device)
