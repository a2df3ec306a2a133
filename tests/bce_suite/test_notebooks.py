"""Where the suite's notebooks are (bce_suite.notebooks): by number, stem or file name;
from the option, the working directory or the checkout."""

from pathlib import Path

import pytest

from bce_suite import notebooks
from bce_suite.parameters import ParameterError
from tests.checkout import REPO_ROOT

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks"


def test_find_notebook_by_number_stem_or_file():
    folder = REPO_ROOT / "notebooks"
    assert notebooks.find_notebook("04", folder).name == "04_pos_weight.ipynb"
    assert notebooks.find_notebook("04_pos_weight", folder).name == "04_pos_weight.ipynb"
    assert notebooks.find_notebook("04_pos_weight.ipynb", folder).name == "04_pos_weight.ipynb"
    with pytest.raises(ValueError, match="notebook '99' not found; known notebooks: 01_bce_loss"):
        notebooks.find_notebook("99", folder)


def test_all_notebooks_are_the_numbered_ones_in_order():
    names = [p.name for p in notebooks.all_notebooks(FIXTURES)]
    assert names == ["01_square.ipynb", "02_fails.ipynb", "03_no_parameters.ipynb"]
    assert notebooks.all_notebooks(FIXTURES.parent) == []


def test_notebooks_come_from_the_option_the_working_directory_or_the_checkout(tmp_path):
    (tmp_path / "notebooks").mkdir()
    assert notebooks.notebook_dir(FIXTURES, cwd=tmp_path) == FIXTURES
    assert notebooks.notebook_dir(None, cwd=FIXTURES) == FIXTURES  # the folder itself
    assert notebooks.notebook_dir(None, cwd=FIXTURES.parent) == FIXTURES  # ./notebooks
    assert notebooks.notebook_dir(None, cwd=tmp_path) == REPO_ROOT / "notebooks"  # the checkout
    with pytest.raises(ParameterError, match=r"--notebooks .*: no notebooks \(\[0-9\]"):
        notebooks.notebook_dir(tmp_path)


def test_without_a_checkout_it_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(notebooks, "CHECKOUT", tmp_path / "site-packages")  # a wheel's
    with pytest.raises(ParameterError) as info:
        notebooks.notebook_dir(None, cwd=tmp_path)
    looked = [tmp_path / "notebooks", tmp_path, tmp_path / "site-packages" / "notebooks"]
    assert str(info.value) == (
        f"no notebooks ([0-9][0-9]_*.ipynb) found; looked in {', '.join(map(str, looked))}: "
        "run from the suite's folder, or give --notebooks DIR"
    )
