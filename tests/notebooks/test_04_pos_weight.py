"""Notebook 04 (pos_weight): its run at the defaults against the committed outputs and the
optimum log(w p / (1 - p)), the README's command, and the sets that once stopped it."""

import json
import math
import subprocess
import sys

import pytest

from tests.checkout import find_notebook
from tests.notebooks.committed_outputs import assert_reproduced

NOTEBOOK = find_notebook("04")
pytestmark = pytest.mark.notebook


def test_its_checked_outputs_are_the_committed_ones(executions):
    assert_reproduced(executions("04"))


def test_its_results(executions):
    r = executions("04").results  # w = 3, 20% positives
    assert r["example4_loss"] == pytest.approx(math.log1p(math.exp(-1.5)), abs=1e-6)
    assert r["positive_fraction_observed"] == pytest.approx(0.2)
    assert r["optimal_logit_theory"] == pytest.approx(math.log(3 * 0.2 / 0.8), abs=1e-6)
    assert r["optimal_logit_measured"] == pytest.approx(r["optimal_logit_theory"], abs=1e-3)
    assert abs(r["calibrated_mean_probability"] - 0.2) < 0.03


def test_the_readmes_papermill_command_in_another_directory(tmp_path):
    """The README's papermill command, run from a directory that is not the repo."""
    nb = NOTEBOOK
    cmd = [sys.executable, "-m", "papermill", str(nb), "out.ipynb"]
    cmd += ["-p", "pos_weight", "3", "-p", "results_path", "r.json", "-p", "steps", "200"]
    cmd += ["-p", "n_samples", "2000"]
    subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True)
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["params"]["pos_weight"] == 3.0
    assert r["optimal_logit_theory"] == pytest.approx(math.log(3 * 0.2 / 0.8), abs=1e-6)
    assert r["optimal_logit_measured"] == pytest.approx(r["optimal_logit_theory"], abs=1e-3)


@pytest.mark.parametrize("seed", [1, 38])
def test_ten_positives_and_long_training_run_to_the_end(executions, seed):
    """Accepted sets that stopped on `precisions[-1] < precisions[0]` (issue 24, item 2)."""
    run = executions(
        "04", n_samples=100, positive_fraction=0.1, steps=3000, seed=seed, device="cpu"
    )
    r = run.results
    # the constant model's optimum holds on any data: log(w p / (1 - p)) with w = 3, p = 0.1
    assert r["optimal_logit_theory"] == pytest.approx(math.log(3 * 0.1 / 0.9), abs=1e-6)
    assert r["optimal_logit_measured"] == pytest.approx(r["optimal_logit_theory"], abs=1e-3)
    printed = run.printed()
    assert "only 10 positives in the test set: too few to check the shift here" in printed
    table = printed.split("    w   precision     recall\n", 1)[1].splitlines()[:8]
    precisions = [row.split()[1] for row in table]
    assert "0.000" not in precisions, "no predicted positive is an undefined precision, not 0"
    if seed == 1:  # the w = 0.25 model predicts no positive on this test set
        assert precisions[0] == "undefined"
        assert "precision is undefined at an end of the range" in printed


@pytest.mark.parametrize("w", [1.03, 0.97])
def test_pos_weight_near_one_runs_to_the_end(executions, w):
    """Near w = 1 the shift moves the mean probability by less than the test set's noise:
    the notebook prints both means instead of stopping on "closer after"."""
    run = executions("04", pos_weight=w, n_samples=1000, steps=300, seed=2, device="cpu")
    r = run.results
    assert r["optimal_logit_theory"] == pytest.approx(math.log(w * 0.2 / 0.8), abs=1e-6)
    assert r["optimal_logit_measured"] == pytest.approx(r["optimal_logit_theory"], abs=1e-3)
    printed = run.printed()
    # both models at their optimum with 200 test positives: the shift is checked, the verdict
    # on which mean is closer is left out
    assert "the shift matches log w within the tolerance checked" in printed
    assert "too little to say which" in printed
    # 1.03 / 0.97 moves the mean probability of 0.2 by about p (1 - p) |log w| = 0.005
    assert abs(r["calibrated_mean_probability"] - 0.2) < 0.03
