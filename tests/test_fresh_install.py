"""A new user's install of the command: a fresh venv, torch installed as the Makefile
installs it (TORCH_SPEC), then `pip install '.[suite]'` from a copy of the checkout (not
editable: the package alone, in site-packages), and `bce-notebooks run --quick` over the
checkout's notebooks: every notebook runs and writes its results and page.

Slow (a new venv with torch), so it runs in CI or with BCE_FRESH_INSTALL=1, and not inside
the clone that tests/test_fresh_clone.py starts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.checkout import NOTEBOOK_DIR, REPO_ROOT, all_notebooks
from tests.fresh import clean_environment, slow


def torch_spec() -> list[str]:
    """What the Makefile installs first into a venv without torch (TORCH_SPEC, which the
    environment overrides as it does for make)."""
    if spec := os.environ.get("TORCH_SPEC"):
        return spec.split()
    makefile = (REPO_ROOT / "Makefile").read_text()
    return re.search(r"^TORCH_SPEC \?= (.+)$", makefile, re.M).group(1).split()


def copy_checkout(target: Path) -> Path:
    """The checkout's files as git sees them (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():  # a file deleted but not yet committed is listed too
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_the_torch_spec_is_the_makefiles():
    spec = torch_spec()
    assert spec and spec[0].startswith("torch") and any(s.startswith("torchvision") for s in spec)


@pytest.mark.fresh_install
@slow("BCE_FRESH_INSTALL")
def test_a_fresh_venv_with_the_suite_extra_runs_the_command(tmp_path):
    source = copy_checkout(tmp_path / "source")
    venv, out = tmp_path / "venv", tmp_path / "out"
    env = clean_environment()

    def run(*command: str | Path, timeout: int = 900) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(c) for c in command], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    python = venv / "bin" / "python"
    run(sys.executable, "-m", "venv", venv)
    run(python, "-m", "pip", "install", "-q", *torch_spec())
    run(python, "-m", "pip", "install", "-q", f"{source}[suite]")
    where = run(python, "-c", "import bce_suite; print(bce_suite.__file__)").stdout
    assert Path(where.strip()).is_relative_to(venv), "the package installed, not the checkout"
    assert not (venv / "bin" / "pytest").exists(), "no test tools in the suite extra"

    done = run(venv / "bin" / "bce-notebooks", "run", "--quick", "--notebooks", NOTEBOOK_DIR,
               "--out", out, "--no-progress")  # fmt: skip
    summary = {row["run"]: row for row in json.loads((out / "summary.json").read_text())}
    stems = [nb.stem for nb in all_notebooks()]
    assert {run: row["status"] for run, row in summary.items()} == dict.fromkeys(stems, "ok"), (
        done.stderr[-3000:]
    )
    for stem in stems:
        results = json.loads((out / f"{stem}.json").read_text())
        assert results["notebook"] == stem and summary[stem]["numbers"], stem
        assert (out / f"{stem}.html").read_text().startswith("<!DOCTYPE html>")
    assert (out / "index.html").is_file()
    listed = run(python, "-m", "bce_suite", "list", "--notebooks", NOTEBOOK_DIR).stdout
    assert all(f"{stem}: " in listed for stem in stems), "python -m bce_suite is the command"
