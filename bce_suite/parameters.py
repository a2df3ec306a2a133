"""Command-line parameters: typed like each notebook's defaults and checked against the
notebook's spec in `bce_helpers.params` (the rules its `setup()` applies), before any run;
grids of values for sweeps."""

from __future__ import annotations

import ast
import functools
import itertools
import re
from pathlib import Path
from typing import Any

from bce_helpers.params import SPECS, check_params

# The test parameter set: small values that run every notebook in seconds (--quick).
QUICK_PARAMS: dict[str, dict[str, Any]] = {
    "01_bce_loss": {"n_points": 51},
    "02_functional_bce": {},
    "03_bce_with_logits": {"z_max": 100.0, "n_points": 201},
    "04_pos_weight": {"n_samples": 1000, "steps": 150},
    "05_mlp_training": {"n_samples": 2000, "epochs": 1},
    "06_circles": {"epochs": 30, "lr": 0.01},
    "07_multi_label": {"n_images": 300, "epochs": 3},
    "08_thresholds_calibration": {"n_blobs": 2000, "steps": 100},
    "09_bce_at_scale": {"max_log2_size": 14, "repeats": 2},
}
# Set by the runner for every run, never by the user.
RUNNER_PARAMETERS = ("results_path",)


class ParameterError(ValueError):
    """Bad command-line input, found before any run: an unknown notebook or parameter, a
    value or combination the notebook's spec refuses, a malformed grid file."""


def inspect_parameters(notebook: Path) -> dict[str, dict[str, str]]:
    """papermill's view of a notebook's parameters cell: name -> default, help."""
    import papermill

    return papermill.inspect_notebook(str(notebook))


def declared_parameters(notebook: Path) -> dict[str, Any]:
    """The names and default values of a notebook's parameters cell, in order."""
    path = Path(notebook).resolve()
    return dict(_declared(path, path.stat().st_mtime_ns))


@functools.lru_cache(maxsize=64)
def _declared(path: Path, mtime_ns: int) -> tuple[tuple[str, Any], ...]:
    """declared_parameters, read once per version of the file (a sweep asks per run)."""
    return tuple((n, ast.literal_eval(p["default"])) for n, p in inspect_parameters(path).items())


def coerce_value(name: str, value: Any, default: Any) -> Any:
    """Type a value (a command-line string, or a YAML value) like the declared default."""
    kind = type(default)
    text = value.strip() if isinstance(value, str) else value
    try:
        if isinstance(default, bool):
            if isinstance(text, str) and text.lower() in ("true", "false"):
                return text.lower() == "true"
            if isinstance(text, bool):
                return text
        elif isinstance(default, int):
            if isinstance(text, str):
                return int(text)
            if isinstance(text, int) and not isinstance(text, bool):
                return text
        elif isinstance(default, float):
            if isinstance(text, str | int | float) and not isinstance(text, bool):
                return float(text)
        elif isinstance(default, str) or default is None:
            if default is None and isinstance(text, str) and text == "None":
                return None
            if isinstance(text, str):
                return text
            if default is None and isinstance(text, int | float) and not isinstance(text, bool):
                return text
    except ValueError:
        pass
    kind_name = "a string" if default is None else f"{kind.__name__}"
    raise ParameterError(
        f"parameter {name}: {value!r} is not {kind_name} like its default {default!r}"
    )


def refuse_unknown(notebook: Path, names: list[str], declared: dict[str, Any]) -> None:
    """Refuse names the notebook does not declare (or that only the runner sets)."""
    unknown = [n for n in names if n not in declared or n in RUNNER_PARAMETERS]
    if unknown:
        shown = [n for n in declared if n not in RUNNER_PARAMETERS]
        raise ParameterError(
            f"{notebook.stem} has no parameter {', '.join(map(repr, unknown))}; "
            f"declared: {', '.join(shown) or 'none (it has no parameters cell)'}"
        )


def check_parameters(notebook: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Names must be declared, values must fit the defaults' types and the notebook's
    spec (the rules `setup()` applies, combinations included); return typed values."""
    declared = declared_parameters(notebook)
    refuse_unknown(notebook, list(params), declared)
    typed = {n: coerce_value(n, v, declared[n]) for n, v in params.items()}
    if notebook.stem in SPECS:  # the suite's own notebooks: the same rules as setup()
        try:
            check_params(notebook.stem, {**declared, **typed})
        except ValueError as exc:
            raise ParameterError(f"{notebook.stem}: {exc}") from None
    return typed


def effective_parameters(notebook: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Every parameter a run executes with: the declared defaults, then those given."""
    declared = declared_parameters(notebook)
    full = {**declared, **params}
    return {k: v for k, v in full.items() if k not in RUNNER_PARAMETERS}


def run_name(stem: str, params: dict[str, Any]) -> str:
    """A file-safe name for a run from its notebook and parameters."""
    if not params:
        return stem
    text = "__".join(f"{k}={v}" for k, v in params.items())
    return stem + "__" + re.sub(r"[^\w.=+-]", "_", text)


def run_names(stem: str, combos: list[dict[str, Any]]) -> list[str]:
    """Each combination's run name, refusing two that would share one (and so one output)."""
    names: dict[str, dict[str, Any]] = {}
    for combo in combos:
        name = run_name(stem, combo)
        if name in names:
            raise ParameterError(
                f"two runs would have the same name {name!r}: {names[name]} and {combo} "
                f"(a value given twice, or values that differ only in characters a file name "
                f"cannot hold); give each run distinct values"
            )
        names[name] = combo
    return list(names)


def grid(values: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of the values, as one parameter dict per run."""
    names = list(values)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values.values())]


def sweep_parameters(
    notebook: Path, swept: dict[str, list[Any]], fixed: dict[str, Any]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(swept values, all given values) per combination, each checked in full."""
    declared = declared_parameters(notebook)
    refuse_unknown(notebook, [*swept, *fixed], declared)
    if empty := [n for n, v in swept.items() if not v]:
        raise ParameterError(f"no values given for {', '.join(empty)}")
    fixed = {n: coerce_value(n, v, declared[n]) for n, v in fixed.items()}
    swept = {n: [coerce_value(n, v, declared[n]) for v in vs] for n, vs in swept.items()}
    return [(combo, check_parameters(notebook, {**fixed, **combo})) for combo in grid(swept)]


def load_grid(path: Path) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """A YAML grid: `parameters:` (name -> list of values) and optional `fixed:` values.

    Any problem with the file is one ParameterError line naming it (and the line, for a
    YAML syntax error)."""
    import yaml

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ParameterError(f"{path}: cannot read the grid file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParameterError(f"{where}: YAML syntax error: {problem}") from None
    data = {} if data is None else data
    if not isinstance(data, dict) or set(data) - {"parameters", "fixed"}:
        raise ParameterError(
            f"{path}: a grid is a mapping with the keys `parameters:` and optional `fixed:`"
        )
    swept, fixed = data.get("parameters"), data.get("fixed") or {}
    if not isinstance(swept, dict) or not swept:
        raise ParameterError(f"{path}: needs a `parameters:` mapping of name -> list of values")
    if not isinstance(fixed, dict):
        raise ParameterError(f"{path}: `fixed:` must be a mapping of name -> one value")
    swept = {k: v if isinstance(v, list) else [v] for k, v in swept.items()}
    if empty := [k for k, v in swept.items() if not v]:
        raise ParameterError(f"{path}: no values given for {', '.join(empty)}")
    return swept, fixed
