"""Colab: every notebook's badge and bootstrap cell, and the bootstrap as Colab meets it."""

import json
import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import nbformat
import pytest

from tests.checkout import NOTEBOOK_DIR, REPO_ROOT, all_notebooks

URL = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def test_badges_and_bootstraps_come_from_the_one_url():
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "colab.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    readme = (REPO_ROOT / "README.md").read_text()
    slug = URL.removeprefix("https://github.com/")
    for path in all_notebooks():
        nb = nbformat.read(path, as_version=4)
        target = f"https://colab.research.google.com/github/{slug}/blob/main/notebooks/{path.name}"
        assert "[![Open In Colab]" in nb.cells[0].source and target in nb.cells[0].source
        assert target in readme
        bootstrap = nb.cells[1]
        assert bootstrap.cell_type == "code" and f'REPOSITORY = "{URL}"' in bootstrap.source
        assert "google.colab" in bootstrap.source and not bootstrap.outputs


@pytest.mark.notebook
def test_bootstrap_installs_the_package_where_colab_lacks_it(tmp_path):
    """A fresh env without bce_helpers, a stand-in google.colab, pip pointed at a wheel."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(wheels), str(REPO_ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("bce_helpers-*.whl")
    # A new venv that sees this venv's packages (torch, papermill, ...) through a plain
    # path entry, which does not run their .pth files: the editable bce_helpers is absent.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "outer_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    fake = tmp_path / "fake_colab" / "google" / "colab"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('"""A stand-in for Colab\'s google.colab module."""\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "fake_colab"), "BCE_HELPERS_SPEC": str(wheel)}
    work = tmp_path / "work"
    work.mkdir()
    probe = "import importlib.util as u; print(u.find_spec('bce_helpers') is None)"
    before = subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, cwd=work, env=env
    )
    assert before.stdout.strip() == "True", "the fresh env must not have bce_helpers"

    cmd = [python, "-m", "papermill", str(NOTEBOOK_DIR / "02_functional_bce.ipynb"), "out.ipynb"]
    cmd += ["-p", "results_path", "r.json"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=work, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((work / "r.json").read_text())
    assert results["functional_loss"] == results["module_loss"] > 0
    after = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd=work, env=env)
    assert after.stdout.strip() == "False", "the bootstrap cell installed bce_helpers"
    assert list(Path(site).glob("bce_helpers-*.dist-info")), "installed from the wheel"
