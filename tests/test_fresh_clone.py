"""A fresh clone, set up and run with the README's two commands, as a new user would.

Slow (a new .venv, then the whole suite again), so it runs in CI or with
BCE_FRESH_CLONE=1, and never inside the clone it starts.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.checkout import REPO_ROOT
from tests.fresh import INSIDE, clean_environment, slow


def readme_commands() -> list[str]:
    """The commands of the README's 'two commands' block, as written there."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## The two commands", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_commands_are_the_two():
    assert readme_commands() == ["make run", "make test"]


@pytest.mark.fresh_clone
@slow("BCE_FRESH_CLONE")
def test_fresh_clone_runs_the_readme_commands(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    cache = os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
    env = clean_environment(PIP_CACHE_DIR=cache, **{INSIDE: "1"})
    for command in readme_commands():
        done = subprocess.run(
            command, shell=True, cwd=clone, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, (
            f"`{command}` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    assert (clone / ".venv" / "bin" / "python").exists()
    assert (clone / "runs" / "latest" / "summary.json").exists()
