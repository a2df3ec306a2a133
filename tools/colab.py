"""Write the Colab badge and bootstrap cell of every notebook, and the README's badges.

The repository URL is kept in one place, pyproject.toml's [project.urls] Repository;
everything Colab needs is generated from it. Run after changing that URL or adding a
notebook; `--check` only reports what would change (exit 1), for the tests.

    .venv/bin/python tools/colab.py [--check]
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BOOTSTRAP = """\
# In Colab, install the suite's helper package first; elsewhere this cell does nothing.
import importlib
import importlib.util
import os

REPOSITORY = "{url}"
colab = importlib.util.find_spec("google") and importlib.util.find_spec("google.colab")
if colab and importlib.util.find_spec("bce_helpers") is None:
    spec = os.environ.get("BCE_HELPERS_SPEC", f"bce-helpers @ git+{{REPOSITORY}}")
    %pip install -q "{{spec}}"
    importlib.invalidate_caches()"""
BADGE_RE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")


def repository_url() -> str:
    """pyproject.toml's [project.urls] Repository."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data["project"]["urls"]["Repository"].rstrip("/")


def badge(url: str, notebook: str) -> str:
    """Markdown for an Open-in-Colab badge of notebooks/<notebook>."""
    path = url.removeprefix("https://github.com/")
    target = f"https://colab.research.google.com/github/{path}/blob/main/notebooks/{notebook}"
    return f"[![Open In Colab]({BADGE_IMAGE})]({target})"


def bootstrap_source(url: str) -> str:
    return BOOTSTRAP.format(url=url)


def update_notebook(path: Path, url: str) -> bool:
    """Put the badge under the title and the bootstrap in the first code cell."""
    nb = nbformat.read(path, as_version=4)
    title = nb.cells[0]
    lines = title.source.splitlines()
    wanted_badge = badge(url, path.name)
    if len(lines) > 1 and BADGE_RE.fullmatch(lines[1].strip()):
        lines[1] = wanted_badge
    else:
        lines.insert(1, wanted_badge)
    new_title = "\n".join(lines)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    new_bootstrap = bootstrap_source(url)
    changed = new_title != title.source or new_bootstrap != first_code.source
    title.source, first_code.source = new_title, new_bootstrap
    if changed:
        nbformat.write(nb, path)
    return changed


def update_readme(url: str) -> bool:
    """A badge at the end of each notebook row of the README's table."""
    readme = ROOT / "README.md"
    text = readme.read_text()

    def row(match: re.Match) -> str:
        name, rest = match.group(1), BADGE_RE.sub("", match.group(2)).rstrip(" |")
        return f"| [{name}](notebooks/{name}.ipynb) |{rest} | {badge(url, name + '.ipynb')} |"

    new = re.sub(r"^\| \[(\d\d_\w+)\]\(notebooks/\1\.ipynb\) \|(.*)$", row, text, flags=re.M)
    new = new.replace(
        "| notebook | what it teaches |\n|---|---|",
        "| notebook | what it teaches | Colab |\n|---|---|---|",
    )
    if new != text:
        readme.write_text(new)
    return new != text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report, change nothing")
    args = parser.parse_args()
    url = repository_url()
    stale = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        if args.check:
            nb = nbformat.read(path, as_version=4)
            first_code = next(c for c in nb.cells if c.cell_type == "code")
            if badge(url, path.name) not in nb.cells[0].source or (
                first_code.source != bootstrap_source(url)
            ):
                stale.append(path.name)
        elif update_notebook(path, url):
            print(f"updated {path.name}")
    readme = (ROOT / "README.md").read_text()
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.check:
        stale += [f"README.md ({n})" for n in notebooks if badge(url, n) not in readme]
    elif update_readme(url):
        print("updated README.md")
    if stale:
        print("out of date (run tools/colab.py):", ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
