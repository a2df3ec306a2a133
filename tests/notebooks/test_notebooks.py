"""What every notebook shares: its parameters cell against its spec, bad values refused in
its setup cell, and a committed copy without errors or paths of this machine."""

import copy

import nbformat
import papermill
import pytest
import torch
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from papermill.parameterize import parameterize_notebook

from bce_helpers.params import spec_for
from tests.checkout import all_notebooks, find_notebook

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
    ("09", {"max_log2_size": 20, "repeats": 1000}, "repeats=1000 are not allowed together"),
]
if not torch.cuda.is_available():
    BAD.append(("03", {"device": "cuda"}, "device='cuda' is not available on this machine"))
    BAD.append(("05", {"cuda_graph": True}, "parameter cuda_graph=True needs device 'cuda'"))


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """One kernel for every notebook's refusals: the cells before a setup cell only set up
    Colab and assign the parameters, and the setup cell names each of its arguments, so the
    cases of all notebooks can follow one another in it."""
    folder = tmp_path_factory.mktemp("refusals")
    client = NotebookClient(
        nbformat.v4.new_notebook(), kernel_name="python3", resources={"metadata": {"path": folder}}
    )
    with client.setup_kernel():
        yield client


@pytest.mark.notebook
@pytest.mark.parametrize("name", sorted({name for name, _, _ in BAD}))
def test_bad_parameter_stops_in_the_check_cell(kernel, name):
    """Each bad value, injected as papermill injects it, stops the notebook at its setup
    cell with the message, every cell before it having run."""
    notebook = nbformat.read(find_notebook(name), as_version=4)
    notebook.metadata.papermill = {}  # where papermill records what it injected
    for _, params, message in [case for case in BAD if case[0] == name]:
        kernel.nb = parameterize_notebook(copy.deepcopy(notebook), params, language="python")
        cells = kernel.nb.cells
        code = [i for i, c in enumerate(cells) if c.cell_type == "code"]
        setup = next(i for i in code if "setup(" in cells[i].source)
        for index in code[: code.index(setup)]:
            kernel.execute_cell(cells[index], index)  # raises if a cell before setup fails
        with pytest.raises(CellExecutionError) as err:
            kernel.execute_cell(cells[setup], setup)
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
