"""Every notebook executed through papermill with small parameters, results asserted."""

import copy
import json
import math
import subprocess
import sys

import nbformat
import papermill
import pytest
import torch
import torch.nn.functional as F
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from papermill.parameterize import parameterize_notebook

from bce_helpers.params import spec_for
from tests.checkout import NOTEBOOK_DIR, all_notebooks, find_notebook

pytestmark = pytest.mark.notebook
NOTEBOOKS = [
    "01_bce_loss",
    "02_functional_bce",
    "03_bce_with_logits",
    "04_pos_weight",
    "05_mlp_training",
    "06_circles",
    "07_multi_label",
    "08_thresholds_calibration",
    "09_bce_at_scale",
]


def test_the_notebooks_exist():
    assert [p.stem for p in all_notebooks()][: len(NOTEBOOKS)] == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_cell_matches_the_spec(name):
    path = find_notebook(name)
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged `parameters`"
    declared = papermill.inspect_notebook(str(path))
    assert list(declared) == list(spec_for(name)), (
        "parameters cell and spec must list the same names"
    )
    assert declared["seed"]["default"] == "42" and declared["device"]["default"] == '"auto"'
    assert declared["results_path"]["default"] == "None"
    # the next code cell checks every parameter, by name
    following = nb.cells[nb.cells.index(tagged[0]) + 1].source
    assert f'setup(\n    "{name}"' in following or f'setup("{name}"' in following
    for param in declared:
        assert f"{param}={param}" in following


def test_01_values(run_notebook):
    r = run_notebook("01", seed=3, n_points=11)
    torch.manual_seed(3)
    x, t = torch.randn(2, 3), torch.rand(2, 3)
    expected = F.binary_cross_entropy(torch.sigmoid(x), t).item()
    assert r["example1_loss"] == pytest.approx(expected, abs=1e-6)
    assert r["example1_loss_by_hand"] == pytest.approx(expected, abs=1e-6)
    assert 0 <= r["grad_max_abs_err"] < 1e-6
    assert round(r["howto_example1_loss"], 4) == 1.2200
    # the training run: the squared error needs ten times as many steps as BCE
    assert r["bce_first_all_right_step"] * 10 <= r["squared_error_first_all_right_step"]
    assert r["params"]["seed"] == 3 and r["params"]["n_points"] == 11
    assert r["device"] in ("cpu", "cuda", "mps") and r["torch_version"] == torch.__version__


def test_02_values(run_notebook):
    r = run_notebook("02", seed=5, rows=4, cols=3)
    torch.manual_seed(5)
    x, t = torch.randn(4, 3), torch.rand(4, 3)
    expected = F.binary_cross_entropy(torch.sigmoid(x), t).item()
    assert r["functional_loss"] == pytest.approx(expected, abs=1e-6)
    assert r["module_loss"] == r["functional_loss"]


def test_03_values(run_notebook):
    r = run_notebook("03", seed=1, z_max=50.0, n_points=101)
    torch.manual_seed(1)
    x = torch.randn(3)
    t = torch.ones(3).random_(2)
    expected = F.binary_cross_entropy_with_logits(x, t).item()
    assert r["example3_loss"] == pytest.approx(expected, abs=1e-6)
    assert 0 <= r["max_abs_diff_sigmoid_bce_vs_with_logits"] < 1e-6
    # 1 / (1 + e^-z) rounds to 1.0 in float32 once e^-z is below half an ulp of 1, 2^-24
    assert r["sigmoid_saturation_z_float32"] == pytest.approx(24 * math.log(2), abs=0.02)


def test_04_values(run_notebook):
    r = run_notebook("04", pos_weight=2.0, positive_fraction=0.1, n_samples=1000, steps=300)
    assert r["example4_loss"] == pytest.approx(math.log1p(math.exp(-1.5)), abs=1e-6)
    assert r["positive_fraction_observed"] == pytest.approx(0.1)
    assert r["optimal_logit_theory"] == pytest.approx(math.log(2 * 0.1 / 0.9), abs=1e-6)
    assert r["optimal_logit_measured"] == pytest.approx(r["optimal_logit_theory"], abs=1e-3)
    assert abs(r["calibrated_mean_probability"] - 0.1) < 0.03


def test_04_from_the_command_line_in_another_directory(tmp_path):
    """The README's papermill command, run from a directory that is not the repo."""
    nb = NOTEBOOK_DIR / "04_pos_weight.ipynb"
    cmd = [sys.executable, "-m", "papermill", str(nb), "out.ipynb"]
    cmd += ["-p", "pos_weight", "3", "-p", "results_path", "r.json", "-p", "steps", "200"]
    cmd += ["-p", "n_samples", "2000"]
    subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True)
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["params"]["pos_weight"] == 3.0
    assert r["optimal_logit_theory"] == pytest.approx(math.log(3 * 0.2 / 0.8), abs=1e-6)
    assert r["optimal_logit_measured"] == pytest.approx(r["optimal_logit_theory"], abs=1e-3)


BAD = [
    ("01", {"n_points": 1}, "parameter n_points=1 is not allowed: expected an integer >= 3"),
    ("01", {"seed": "abc"}, "parameter seed='abc' is not allowed: expected an integer >= 0"),
    ("02", {"rows": 0}, "parameter rows=0 is not allowed"),
    ("03", {"z_max": -5.0}, "parameter z_max=-5.0 is not allowed: expected a number > 0"),
    ("04", {"pos_weight": 0}, "parameter pos_weight=0 is not allowed: expected a number > 0"),
    ("04", {"positive_fraction": 0.9}, "parameter positive_fraction=0.9 is not allowed"),
    ("04", {"device": "tpu"}, "parameter device='tpu' is not allowed: expected one of 'auto'"),
    ("05", {"epochs": 0}, "parameter epochs=0 is not allowed: expected an integer >= 1"),
    ("05", {"dataset": "mnist"}, "parameter dataset='mnist' is not allowed: expected one of"),
    ("06", {"framework": "jax"}, "parameter framework='jax' is not allowed: expected one of"),
    ("07", {"smoothing": 0.6}, "parameter smoothing=0.6 is not allowed: expected a number"),
    ("07", {"epochs": 21, "n_images": 1000, "batch_size": 1}, "are not allowed together"),
    ("08", {"malignant_kept": 0.1}, "parameters malignant_kept=0.1 are not allowed together"),
    ("08", {"n_bins": 1}, "parameter n_bins=1 is not allowed: expected an integer >= 2"),
    ("09", {"dtype": "float64"}, "parameter dtype='float64' is not allowed: expected one of"),
    ("09", {"max_log2_size": 40}, "parameter max_log2_size=40 is not allowed"),
]
if not torch.cuda.is_available():
    BAD.append(("03", {"device": "cuda"}, "device='cuda' is not available on this machine"))
    BAD.append(("05", {"cuda_graph": True}, "parameter cuda_graph=True needs device 'cuda'"))


@pytest.mark.parametrize("name", sorted({name for name, _, _ in BAD}))
def test_bad_parameter_stops_in_the_check_cell(tmp_path, name):
    """Each bad value, injected as papermill injects it, stops the notebook at its setup
    cell with the message, every cell before it having run. One kernel runs a notebook's
    cases one after the other (a kernel per case cost about 5 s each)."""
    notebook = nbformat.read(find_notebook(name), as_version=4)
    notebook.metadata.papermill = {}  # where papermill records what it injected
    client = NotebookClient(
        notebook, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    with client.setup_kernel():
        for _, params, message in [case for case in BAD if case[0] == name]:
            injected = parameterize_notebook(copy.deepcopy(notebook), params, language="python")
            code = [c for c in injected.cells if c.cell_type == "code"]
            setup = next(i for i, c in enumerate(code) if "setup(" in c.source)
            for index, cell in enumerate(code[:setup]):
                client.execute_cell(cell, index)  # raises if a cell before setup fails
            with pytest.raises(CellExecutionError) as err:
                client.execute_cell(code[setup], setup)
            assert err.value.ename == "ValueError", params
            assert message in err.value.evalue, params


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_clean(name):
    nb = nbformat.read(find_notebook(name), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert any(c.outputs for c in code), "committed with outputs (run `make notebooks`)"
    for c in code:
        for o in c.outputs:
            assert o.output_type != "error"
            text = o.get("text", "")
            assert "/work/" not in text and "/home/" not in text and "/tmp/" not in text
        assert "papermill" not in c.metadata and "execution" not in c.metadata
    assert "papermill" not in nb.metadata


def test_05_learnable_learns_in_a_small_quick_run_while_fakedata_stays_at_chance(run_notebook):
    small = dict(loss="bce_with_logits", n_samples=300, epochs=4, lr=1e-3)
    r = run_notebook("05", dataset="learnable", **small)
    assert r["final_train_loss"] < math.log(2) - 0.2
    assert r["history"][-1] < r["history"][0]
    assert r["test_accuracy"] > 0.8
    fake = run_notebook("05", dataset="fakedata", **small)
    assert fake["chance_loss"] == pytest.approx(math.log(2), abs=0.01)
    assert len(fake["history"]) == 4, "one mean loss per epoch"
    assert abs(fake["final_train_loss"] - math.log(2)) < 0.05
    assert fake["test_loss"] > math.log(2) - 0.05 and abs(fake["test_accuracy"] - 0.5) < 0.25
    # random labels can be memorised: training loss far below ln 2, held out at chance
    assert fake["memorised_train_loss"] < 0.1
    assert abs(fake["memorised_test_accuracy"] - 0.5) < 4 * 0.5 / 512**0.5


@pytest.mark.parametrize(("framework", "epochs"), [("torch", 60), ("keras", 60)])
def test_06_circles_both_frameworks(run_notebook, framework, epochs):
    r = run_notebook("06", framework=framework, epochs=epochs, lr=1e-2)
    # Dense(100, relu) separates the circles: well above the 50% of a constant guess
    assert r["test_accuracy"] > 0.8 and r["train_accuracy"] > 0.8
    assert len(r["history"]["loss"]) == epochs and len(r["history"]["val_loss"]) == epochs
    assert r["final_train_loss"] == r["history"]["loss"][-1] < math.log(2)
    assert r["final_test_loss"] == r["history"]["val_loss"][-1] < math.log(2)


def test_05_fused_loss_trains_like_bce_with_logits(run_notebook):
    small = dict(dataset="learnable", n_samples=1000, epochs=2, lr=2e-3)
    fused = run_notebook("05", loss="fused_bce_with_logits", **small)
    plain = run_notebook("05", loss="bce_with_logits", **small)
    assert fused["history"] == pytest.approx(plain["history"], abs=1e-4)
    # the fused loss compiles before the clock starts, and says how long that took
    assert fused["compile_seconds"] > 0 and "compile_seconds" not in plain
    assert fused["test_accuracy"] == pytest.approx(plain["test_accuracy"], abs=0.01)
