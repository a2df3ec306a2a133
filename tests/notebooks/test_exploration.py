"""Parameter sets each notebook's spec accepts run to the end, or are refused in setup.

Every run executes the notebook through papermill, in the session's store of runs (a set
that another test runs too is executed once). The corners (every parameter at its
minimum, and every parameter at its maximum; where a combination rule refuses a corner, one
of the rule's numbers moves just far enough for it to hold) and, where a notebook trains,
the long corner (the least data, trained for long: LONG_CAPS) run in CI, with
`BCE_EXPLORE_CORNERS=1`, or with any draws: they are the search, which `make test` leaves
to CI to stay within its time. With more
than one draw a mixed corner runs too (alternate parameters at their minimum and maximum);
on top of them come `BCE_EXPLORE_DRAWS` random draws per notebook (default 0, to keep `make
test` within its time; a deep search is 40). The draws take turns among three regimes,
because failures hide where plain draws rarely go: "plain" (each number log-uniform within
its caps), "long" (the least data, trained for long: small data sets, long runs) and
"edge" (a long-regime draw with each combination rule then held at its boundary: exactly
10 positives, exactly 10 held-out images, the most steps allowed). Sizes are capped (CAPS)
so that one run takes seconds; every other bound is the spec's own. `BCE_EXPLORE_SEED`
changes the draws, and `BCE_EXPLORE_NOTEBOOKS` (names, comma-separated) limits the search
to some notebooks.
"""

from __future__ import annotations

import math
import os
import random
from typing import Any

import pytest
import torch

from bce_helpers.params import (
    SPECS,
    TOGETHER,
    Choice,
    Flag,
    Number,
    OptionalPath,
    check_params,
    spec_for,
)
from bce_suite.parameters import declared_parameters
from tests.checkout import find_notebook

pytestmark = pytest.mark.notebook

DRAWS = int(os.environ.get("BCE_EXPLORE_DRAWS", "0"))
# The corners (min, max, long): in CI (each landing), on request, or with a search.
CORNERS = bool(os.environ.get("CI")) or os.environ.get("BCE_EXPLORE_CORNERS") == "1" or DRAWS > 0
SEED = int(os.environ.get("BCE_EXPLORE_SEED", "0"))
# Upper bounds for the test only, where the spec's own maximum would take minutes.
CAPS: dict[str, dict[str, float]] = {
    "01_bce_loss": {"n_points": 2_000},
    "02_functional_bce": {"rows": 300, "cols": 300},
    "03_bce_with_logits": {"n_points": 20_000},
    "04_pos_weight": {"n_samples": 3_000, "steps": 300},
    "05_mlp_training": {
        "n_samples": 600,
        "image_size": 10,
        "epochs": 4,
        "batch_size": 700,
        "log_every": 4,
    },
    "06_circles": {"n_samples": 400, "epochs": 40},
    "07_multi_label": {"n_images": 300, "image_size": 16, "epochs": 3, "batch_size": 300},
    "08_thresholds_calibration": {"n_blobs": 3_000, "steps": 300},
    "09_bce_at_scale": {"max_log2_size": 16, "repeats": 3},
}
# The "long" regime: sizes of the data stay within SMALL_FACTOR of their lowest value, and
# the training lasts from a tenth of these caps to the caps (seconds each on small data).
LONG_CAPS: dict[str, dict[str, float]] = {
    "04_pos_weight": {"steps": 3_000},
    "05_mlp_training": {"epochs": 100},
    "06_circles": {"epochs": 1_000},
    "07_multi_label": {"epochs": 30},
    "08_thresholds_calibration": {"steps": 3_000},
}
DATA_SIZES = (
    *("n_samples", "image_size", "rows", "cols", "n_points", "max_log2_size"),
    *("n_images", "n_blobs"),  # notebooks 07 and 08
)
SMALL_FACTOR = 4
REGIMES = ("plain", "long", "edge")
FIXED = {"device": "auto", "results_path": None}  # the test sets results_path itself
ONLY = [n for n in os.environ.get("BCE_EXPLORE_NOTEBOOKS", "").split(",") if n]


def bounds(notebook: str, name: str, rule: Number, regime: str = "plain") -> tuple[float, float]:
    """The lowest and highest value the test draws for a number: the spec's, capped; in the
    long regime, data sizes near their lowest value and training up to LONG_CAPS."""
    low = rule.low if rule.low is not None else -1e6
    if rule.low_open:  # the smallest value above the bound that a user might type
        low += 1e-6 if rule.real else 1
    high = rule.high if rule.high is not None else 1e6
    caps = CAPS.get(notebook, {})
    if regime == "long":
        caps = {**caps, **LONG_CAPS.get(notebook, {})}
        if name in DATA_SIZES:
            caps[name] = min(caps.get(name, high), max(low, 1) * SMALL_FACTOR)
        if name in LONG_CAPS.get(notebook, {}):
            low = max(low, caps[name] / 10)
    high = min(high, caps.get(name, high))
    return low, high


def corner(notebook: str, pick: str) -> dict[str, Any]:
    """Every parameter at its lowest ('min'), highest ('max') or alternating ('mixed') value;
    'long': the least data (every other number at its lowest too) trained for long."""
    params = {}
    for i, (name, rule) in enumerate(spec_for(notebook).items()):
        if name in FIXED:
            continue
        long_training = pick == "long" and name in LONG_CAPS.get(notebook, {})
        high = pick == "max" or (pick == "mixed" and i % 2 == 0) or long_training
        if isinstance(rule, Number):
            low_v, high_v = bounds(notebook, name, rule, "long" if pick == "long" else "plain")
            value = high_v if high else low_v
            params[name] = float(value) if rule.real else int(value)
        elif isinstance(rule, Choice):
            params[name] = rule.choices[-1 if high else 0]
        elif isinstance(rule, Flag):
            params[name] = high and allowed_flag(rule)
    return params


def allowed_flag(rule: Flag) -> bool:
    """A flag may be True here only if the device it needs is present."""
    return rule.needs_device is None or (rule.needs_device == "cuda" and torch.cuda.is_available())


def draw(notebook: str, rng: random.Random, regime: str = "plain") -> dict[str, Any]:
    """One random parameter set from the notebook's spec (sizes capped, or those of the long
    regime), log-uniform over wide ranges so that small and large values both come up."""
    params = {}
    for name, rule in spec_for(notebook).items():
        if name in FIXED or isinstance(rule, OptionalPath):
            continue
        if isinstance(rule, Number):
            low, high = bounds(notebook, name, rule, regime)
            if low > 0 and high / low > 100:
                value = math.exp(rng.uniform(math.log(low), math.log(high)))
            else:
                value = rng.uniform(low, high)
            params[name] = value if rule.real else int(min(max(round(value), low), high))
        elif isinstance(rule, Choice):
            params[name] = rng.choice([c for c in rule.choices if c not in ("cuda", "mps")])
        elif isinstance(rule, Flag):
            params[name] = rng.random() < 0.5 and allowed_flag(rule)
    return params


def accepted_draw(
    notebook: str, rng: random.Random, regime: str = "plain", tries: int = 200
) -> dict[str, Any]:
    """A random set the notebook's combination rules accept (refusals have their own tests),
    or, if none comes up, the last one moved to the edge of the rules; in the edge regime,
    then each rule held at its boundary."""
    for _ in range(tries):
        params = draw(notebook, rng, "plain" if regime == "plain" else "long")
        if all(rule.holds(params) for rule in TOGETHER.get(notebook, ())):
            break
    else:
        params = to_edge_of_rules(notebook, params)
    return on_rule_boundaries(notebook, params, rng) if regime == "edge" else params


def on_rule_boundaries(notebook: str, params: dict[str, Any], rng: random.Random):
    """Each combination rule held at its boundary: one of its numbers, picked at random,
    moved towards the bound where the rule fails, to the last value where it holds."""
    params = dict(params)
    spec = spec_for(notebook)
    for rule in TOGETHER.get(notebook, ()):
        numbers = [n for n in rule.names if isinstance(spec[n], Number)]
        for name in rng.sample(numbers, len(numbers)):
            low, high = bounds(notebook, name, spec[name])
            failing = [b for b in (low, high) if not rule.holds({**params, name: b})]
            if failing and rule.holds(params):
                value = edge(rule, params, name, failing[0], params[name], spec[name].real)
                params[name] = value if spec[name].real else int(value)
                break
    return params


def to_edge_of_rules(notebook: str, params: dict[str, Any]) -> dict[str, Any]:
    """The set itself if every combination rule holds; else, for each rule that fails, one of
    its numbers moved towards its default (or a bound) just far enough for the rule to hold:
    a corner of the space the spec accepts, not a refusal."""
    params = dict(params)
    spec, defaults = spec_for(notebook), declared_parameters(find_notebook(notebook))
    for rule in TOGETHER.get(notebook, ()):
        for name in rule.names:
            if rule.holds(params) or not isinstance(spec[name], Number):
                continue
            low, high = bounds(notebook, name, spec[name])
            for target in (min(max(defaults[name], low), high), low, high):
                if rule.holds({**params, name: target}):
                    params[name] = edge(rule, params, name, params[name], target, spec[name].real)
                    break
        assert rule.holds(params), f"{notebook}: no corner of {rule.names} holds"
    return params


def edge(rule: Any, params: dict[str, Any], name: str, bad: float, good: float, real: bool):
    """The value between `bad` (rule fails) and `good` (it holds) nearest `bad` that holds."""
    for _ in range(60):
        if (abs(good - bad) <= 1) if not real else abs(good - bad) <= 1e-9 * abs(good):
            break
        middle = (bad + good) / 2 if real else (bad + good) // 2
        if rule.holds({**params, name: middle}):
            good = middle
        else:
            bad = middle
    return good


def drawn(notebook: str, draws: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """`draws` random sets of one notebook, the regimes taking turns: (regime, params)."""
    rng = random.Random(f"{notebook}-{seed}")
    regimes = [REGIMES[i % len(REGIMES)] for i in range(draws)]
    return [(regime, accepted_draw(notebook, rng, regime)) for regime in regimes]


def cases() -> list[Any]:
    """The corners of every notebook, then DRAWS random sets of each."""
    found = []
    for notebook in SPECS:
        if ONLY and not any(notebook.startswith(n) for n in ONLY):
            continue
        picks = [] if not CORNERS else ["min", "max"] if DRAWS <= 1 else ["min", "max", "mixed"]
        picks += ["long"] if CORNERS and notebook in LONG_CAPS else []
        for pick in picks:
            params = to_edge_of_rules(notebook, corner(notebook, pick))
            found.append(pytest.param(notebook, params, id=f"{notebook}-{pick}"))
        for i, (regime, params) in enumerate(drawn(notebook, DRAWS, SEED)):
            found.append(pytest.param(notebook, params, id=f"{notebook}-draw{i}-{regime}"))
    return found


def test_the_draws_reach_the_regimes_where_failures_hide():
    """40 draws (a deep search) hold the kinds of set that plain draws missed: 04 with at
    most 12 positives trained for at least 1,000 steps; 05 with at most 12 held-out images,
    and 05 trained for at least 1,000 mini-batches on at most 256 images."""
    few_positives = [
        p
        for _, p in drawn("04_pos_weight", 40, 0)
        if round(p["n_samples"] * p["positive_fraction"]) <= 12 and p["steps"] >= 1_000
    ]
    runs_05 = [p for _, p in drawn("05_mlp_training", 40, 0)]
    small_held_out = [p for p in runs_05 if round(p["n_samples"] * p["test_fraction"]) <= 12]
    long_runs = [
        p
        for p in runs_05
        if p["n_samples"] <= 256
        and p["epochs"] * math.ceil(p["n_samples"] * (1 - p["test_fraction"]) / p["batch_size"])
        >= 1_000
    ]
    assert few_positives and small_held_out and long_runs, (
        len(few_positives),
        len(small_held_out),
        len(long_runs),
    )


def test_corners_reach_every_bound():
    """The corners hold each number's lowest and highest value, and every choice's ends."""
    for notebook in SPECS:
        low, high = corner(notebook, "min"), corner(notebook, "max")
        long = corner(notebook, "long")
        for name in LONG_CAPS.get(notebook, {}):
            assert long[name] >= high[name] and long[name] == LONG_CAPS[notebook][name]
        for name, rule in spec_for(notebook).items():
            if isinstance(rule, Number):
                assert (low[name], high[name]) == pytest.approx(bounds(notebook, name, rule))
                assert rule.coerce(low[name]) == low[name] and rule.coerce(high[name]) == high[name]
            elif isinstance(rule, Choice) and name not in FIXED:
                assert {low[name], high[name]} == {rule.choices[0], rule.choices[-1]}


@pytest.mark.parametrize(("notebook", "params"), cases())
def test_accepted_parameters_run_to_the_end_or_are_refused_in_setup(executions, notebook, params):
    run = executions.attempt(notebook, **params)
    if run.error is not None:
        failed = run.failed_cell()
        refused = (
            run.error.startswith("ValueError: ")
            and failed is not None
            and "setup(" in failed.source
            and "parameter" in run.error
        )
        assert refused, f"{notebook} with {params} failed in a later cell: {run.error}"
        return
    assert run.results is not None, "a run that reached the end writes its results JSON"


def test_every_case_is_one_the_spec_accepts():
    """Refusals have their own tests: the cases here must exercise the notebooks."""
    for case in cases():
        notebook, params = case.values
        check_params(notebook, {**FIXED, "device": "cpu", **params})
