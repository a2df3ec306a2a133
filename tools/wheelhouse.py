"""The project's wheelhouse: every declared dependency except torch, torchvision and triton
(which a CUDA machine brings), as wheels, for a machine without a package index.

    python tools/wheelhouse.py [--dest build/wheelhouse] [--python-version 3.12]
    python tools/wheelhouse.py --missing     # which of them this Python lacks; exit 1 if any

The requirements come from pyproject.toml (the dependencies and the suite, test and keras extras)
and are written to DEST/requirements.txt beside the wheels; `make gpu-check` installs them
with `pip install --no-index --find-links DEST -r DEST/requirements.txt`. Without
--python-version (or --platform) the wheels are built for this Python with `pip wheel`
(a package published only as source is built into a wheel here); with them, `pip download`
fetches binary wheels for that Python and platform.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("suite", "test", "keras")  # dev is suite and test: the package itself, not a wheel
# a CUDA machine has its own builds of these; a wheel from an index would replace them
BROUGHT_BY_THE_MACHINE = {"torch", "torchvision", "triton"}


def name_of(requirement: str) -> str:
    """The distribution name of a requirement string, normalised ('scikit-learn>=1.3' ->
    'scikit-learn')."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"requirement {requirement!r} does not start with a package name")
    return re.sub(r"[-_.]+", "-", match[1]).lower()


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The declared dependencies and extras, without the ones the machine brings."""
    project = tomllib.loads(pyproject.read_text())["project"]
    declared = list(project["dependencies"])
    for extra in EXTRAS:
        declared += project["optional-dependencies"][extra]
    return [r for r in declared if name_of(r) not in BROUGHT_BY_THE_MACHINE]


def missing(declared: list[str]) -> list[str]:
    """The requirements with no distribution installed in this Python (versions not checked)."""
    lacking = []
    for requirement in declared:
        try:
            importlib.metadata.distribution(name_of(requirement))
        except importlib.metadata.PackageNotFoundError:
            lacking.append(requirement)
    return lacking


def build(dest: Path, declared: list[str], python_version: str | None, platform: str | None):
    """Fill dest with wheels of the requirements and their dependencies; return pip's status."""
    dest.mkdir(parents=True, exist_ok=True)
    listing = dest / "requirements.txt"
    listing.write_text("".join(f"{r}\n" for r in declared))
    pip = [sys.executable, "-m", "pip"]
    if python_version is None and platform is None:
        command = [*pip, "wheel", "--wheel-dir", str(dest), "-r", str(listing)]
    else:
        command = [*pip, "download", "--dest", str(dest), "--only-binary=:all:", "-r", str(listing)]
        if python_version:
            command += ["--python-version", python_version]
        if platform:
            command += ["--platform", platform]
    print(" ".join(command), flush=True)
    status = subprocess.run(command).returncode
    brought = [
        w.name
        for w in dest.glob("*.whl")
        if name_of(w.name.split("-")[0]) in BROUGHT_BY_THE_MACHINE
    ]
    if brought:
        print(f"error: a dependency pulled in {', '.join(brought)}: remove it", file=sys.stderr)
        return 1
    return status


def main(argv: list[str] | None = None) -> int:
    """Build the wheelhouse, or list what this Python lacks (--missing)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=ROOT / "build" / "wheelhouse")
    parser.add_argument("--python-version", help="the target's Python, e.g. 3.12")
    parser.add_argument("--platform", help="the target's platform tag, e.g. manylinux2014_x86_64")
    parser.add_argument("--missing", action="store_true", help="list what this Python lacks")
    args = parser.parse_args(argv)
    declared = requirements()
    if args.missing:
        lacking = missing(declared)
        for requirement in lacking:
            print(requirement)
        return 1 if lacking else 0
    if args.python_version and not re.fullmatch(r"3\.\d+", args.python_version):
        parser.error(f"--python-version {args.python_version} is not allowed: expected 3.N")
    status = build(args.dest, declared, args.python_version, args.platform)
    print(f"wheelhouse: {len(list(args.dest.glob('*.whl')))} wheels in {args.dest}")
    return status


if __name__ == "__main__":
    sys.exit(main())
