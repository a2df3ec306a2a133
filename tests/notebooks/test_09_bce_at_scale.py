"""Notebook 09 (BCE at scale): its run at the defaults against the committed outputs, its
computed verdicts against its measurements, its stated facts, its rule on the amount of
work, and no float64 on MPS."""

from __future__ import annotations

import json
import re

import nbformat
import pytest
import torch

from bce_helpers.fast.formulas import ATANH_SERIES
from bce_helpers.params import check_params
from bce_suite.execute import execute
from tests.checkout import find_notebook
from tests.notebooks.committed_outputs import assert_reproduced

NOTEBOOK = find_notebook("09")
PARAMS = dict(seed=0, device="cpu", results_path=None, dtype="float32")

# Runs in the notebook's kernel (and here): the run's device becomes torch.device("cpu", 0),
# a stand-in for MPS, and every torch call that leaves a float64 tensor on it fails. A tensor
# is on it when it was made with device=that device, moved there, or computed from tensors
# on it (unless the call moves it elsewhere: .cpu(), .to("cpu"), ...).
GUARD_MODE = """
import weakref

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

import bce_helpers.params

PRETEND = torch.device("cpu", 0)
LEAVES_DEVICE = {"cpu", "numpy", "tolist", "item"}


class NoFloat64OnDevice(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.on_device = {}

    def is_on(self, t):
        ref = self.on_device.get(id(t))
        return ref is not None and ref() is t

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        leaves = tree_leaves((args, kwargs))
        devices = [d for d in leaves if isinstance(d, torch.device)]
        named = ("cpu", "cpu:0", "cuda", "mps")
        devices += [torch.device(s) for s in leaves if isinstance(s, str) and s in named]
        name = getattr(func, "__name__", "")
        to_pretend = PRETEND in devices
        elsewhere = name in LEAVES_DEVICE or any(d != PRETEND for d in devices)
        from_pretend = any(isinstance(t, torch.Tensor) and self.is_on(t) for t in leaves)
        if elsewhere and not to_pretend and isinstance(out, torch.Tensor) and self.is_on(out):
            out = out.clone()  # a real move makes a new tensor; the CPU returns the same one
        if to_pretend or (from_pretend and not elsewhere):
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    if t.dtype == torch.float64:
                        raise AssertionError(
                            f"torch call {name!r} made a float64 tensor on the run's device"
                        )
                    self.on_device[id(t)] = weakref.ref(t)
        return out
"""
GUARD = (
    GUARD_MODE
    + """
bce_helpers.params.resolve_device = lambda device: PRETEND
NoFloat64OnDevice().__enter__()
"""
)


def run_09(tmp_path, inject: str | None = None, nb=None, **params) -> tuple[dict, str]:
    """Execute notebook 09 (or `nb`, a changed copy), with `inject` as a cell before its
    set-up cell; return its results JSON and the text it printed."""
    nb = nb or nbformat.read(NOTEBOOK, as_version=4)
    if inject is not None:
        setup_cell = next(i for i, c in enumerate(nb.cells) if 'setup(\n    "09' in c.source)
        nb.cells.insert(setup_cell, nbformat.v4.new_code_cell(inject))
    source = tmp_path / "09_in.ipynb"
    nbformat.write(nb, source)
    results, output = tmp_path / "09.json", tmp_path / "09_out.ipynb"
    execute(source, output, {**params, "results_path": str(results)}, cwd=tmp_path)
    executed = nbformat.read(output, as_version=4)
    printed = "".join(
        o.get("text", "")
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "stream"
    )
    return json.loads(results.read_text()), printed


def test_the_guard_catches_float64_on_the_device():
    ns: dict = {}
    exec(GUARD_MODE, ns)
    pretend = ns["PRETEND"]
    with ns["NoFloat64OnDevice"]():
        torch.randn(3, dtype=torch.float64)  # on the CPU: allowed
        x = torch.randn(3, device=pretend)  # float32 on the device: allowed
        x.cpu().double()  # moved off the device first: allowed
        for make in (
            lambda: torch.randn(3, device=pretend, dtype=torch.float64),
            lambda: torch.linspace(0, 1, 5, dtype=torch.float64).to(pretend),
            lambda: x.double(),
            lambda: (x * 2).to(torch.float64),
        ):
            with pytest.raises(AssertionError, match="float64 tensor on the run's device"):
                make()


@pytest.mark.notebook
def test_no_float64_tensor_on_the_runs_device(tmp_path, monkeypatch):
    """The whole notebook under the guard (eagerly: the guard sees each torch call)."""
    monkeypatch.setenv("BCE_HELPERS_COMPILE", "0")
    r, printed = run_09(tmp_path, inject=GUARD, max_log2_size=11, repeats=1)
    assert r["compiled"] is False and r["params"]["max_log2_size"] == 11
    assert "fused gradient within 1e-06 of torch's float32 gradient" in printed


@pytest.mark.notebook
def test_the_guard_fails_the_notebook_as_it_was(tmp_path, monkeypatch):
    """The notebook's former check cell (float64 on run.device) fails under the guard."""
    monkeypatch.setenv("BCE_HELPERS_COMPILE", "0")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if "float64 on the CPU (torch's default device)" in c.source)
    old = cell.source
    cell.source = old.replace("dtype=torch.float64)", "dtype=torch.float64, device=run.device)")
    assert cell.source.count("device=run.device") == 4
    with pytest.raises(Exception, match="float64 tensor on the run's device"):
        run_09(tmp_path, inject=GUARD, nb=nb, max_log2_size=10, repeats=1)


def the_verdicts_follow_the_measurements(r: dict, printed: str, largest: int) -> None:
    """What the run says at its largest size (2^largest) against what it measured: the
    fastest method, its fraction of copy, each speed-up, the bytes each method moves."""
    gbps = r["gbps_at_largest"]
    for mode in ("forward", "forward+backward"):
        assert all(0 < v < float("inf") for v in gbps[mode].values())
        best = max(gbps[mode], key=gbps[mode].get)
        assert r["fastest"][mode] == best
        assert r["fraction_of_copy"][mode] == pytest.approx(gbps[mode][best] / r["copy_gbps"])
        assert f"{mode}: {best} was fastest at 2^{largest}" in printed
    both = gbps["forward+backward"]
    assert r["eager_gbps"] == both["eager torch"]
    assert r["compiled_torch_gbps"] == both["compiled torch"]
    for peer, key in (("eager torch", "fused_vs_eager"), ("compiled torch", "fused_vs_compiled")):
        assert r[key] == pytest.approx(both["fused"] / both[peer])
        speed = "faster" if r[key] > 1 else "not faster"
        assert f"the fused loss was {speed} than {peer}" in printed
        log2 = r["fused_faster_from_log2"][peer]
        assert log2 is None or log2 in range(10, largest + 1, 2)
        if log2 == largest or log2 is None:  # at the largest size the crossover follows the ratio
            assert (log2 == largest) == (r[key] > 1)
    # the one pass moves 3 elements per element forward + backward, the others 5 (float32)
    assert r["bytes_per_element"]["fused"] == {"forward": 8, "forward+backward": 12}
    for method in ("eager torch", "compiled torch", "eager from scratch"):
        assert r["bytes_per_element"][method] == {"forward": 8, "forward+backward": 20}
    if r["device"] == "cpu":  # on a GPU, a Triton kernel where Triton runs
        assert r["fused_path"] == "torch.compile (inductor)"
    assert set(r["log1p_seconds"]) == {"torch.log1p(t)", "torch.log(1 + t)", "log1p_series(t)"}
    assert 0 <= r["max_abs_err"] <= 1e-5 and 0 <= r["grad_max_abs_err"] <= 1e-6


@pytest.mark.notebook
def test_its_checked_outputs_are_the_committed_ones(executions):
    assert_reproduced(executions("09"))


@pytest.mark.notebook
def test_the_verdicts_at_the_defaults_follow_the_measurements(executions):
    run = executions("09")
    the_verdicts_follow_the_measurements(run.results, run.printed(), largest=24)


@pytest.mark.notebook
def test_small_size_verdicts_follow_the_measurements(executions):
    run = executions("09", max_log2_size=12, repeats=1)
    r, printed = run.results, run.printed()
    the_verdicts_follow_the_measurements(r, printed, largest=12)
    assert r["launch_bound_up_to_log2"] in (10, 12)
    bound = "launch-bound" if r["device"].split(":")[0] in ("cuda", "mps") else "overhead-bound"
    assert f"{bound}: from 2^10 to 2^{r['launch_bound_up_to_log2']}" in printed
    # 16 KiB fits any last-level cache: no memory roofline may be claimed
    assert r["largest_exceeds_cache"] is False
    assert "the copy streamed from memory: not shown" in printed
    assert "the copy streamed from memory: yes" not in printed


def markdown() -> str:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_the_series_term_counts_match_losses():
    text = " ".join(markdown().split())
    float64_terms = len(ATANH_SERIES[torch.float64]) + 1  # the leading 1 and the rest
    float32_terms = len(ATANH_SERIES[torch.float32]) + 1
    assert (float64_terms, float32_terms) == (16, 5)
    assert f"sums {float64_terms} terms in float64" in text
    assert f"and in float32 {float32_terms} (the leading 1 and 4" in text
    assert f"$s^{{{2 * (float64_terms - 1)}}}/{2 * float64_terms - 1}$" in text
    assert "at least 9 times smaller" in text


def test_the_series_terms_shrink_at_least_ninefold():
    """Each term over the last is s^2 (2k - 1) / (2k + 1) <= 1/9 for s in [0, 1/3]."""
    s = torch.linspace(0, 1 / 3, 1001, dtype=torch.float64)
    k = torch.arange(1, 16, dtype=torch.float64)[:, None]
    terms = s ** (2 * k) / (2 * k + 1)
    previous = s ** (2 * k - 2) / (2 * k - 1)
    assert (terms <= previous / 9 + 1e-18).all()


def test_no_latex_that_jupyterlab_may_show_with_backslashes():
    for math in re.findall(r"\$\$?(.+?)\$\$?", markdown(), flags=re.S):
        assert "\\text{" not in math and "\\_" not in math, math


def test_no_speed_claims_hard_coded_in_the_text():
    text = markdown().lower()
    for claim in ("doubled", "nears the roofline", "x faster", "times faster"):
        assert claim not in text, claim


def test_together_rule_bounds_repeats_times_size():
    assert check_params("09_bce_at_scale", {**PARAMS, "max_log2_size": 24, "repeats": 16})
    assert check_params("09_bce_at_scale", {**PARAMS, "max_log2_size": 28, "repeats": 1})
    with pytest.raises(ValueError) as info:
        check_params("09_bce_at_scale", {**PARAMS, "max_log2_size": 24, "repeats": 17})
    message = str(info.value)
    assert "max_log2_size=24, repeats=17" in message and "at most 2**28" in message
    with pytest.raises(ValueError, match="parameter max_log2_size=29 is not allowed"):
        check_params("09_bce_at_scale", {**PARAMS, "max_log2_size": 29, "repeats": 1})
