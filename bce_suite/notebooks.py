"""Where the suite's notebooks are: an option, the working directory, or the checkout."""

from __future__ import annotations

from pathlib import Path

from bce_suite.parameters import ParameterError

# The source checkout this package was imported from (an editable install); a wheel
# installed into site-packages has no notebooks beside it.
CHECKOUT = Path(__file__).resolve().parent.parent
PATTERN = "[0-9][0-9]_*.ipynb"


def all_notebooks(notebook_dir: Path) -> list[Path]:
    """The numbered notebooks of a folder, in order."""
    return sorted(Path(notebook_dir).glob(PATTERN))


def candidate_dirs(cwd: Path | None = None) -> list[Path]:
    """Where notebooks are looked for when no folder is given, in order."""
    cwd = Path.cwd() if cwd is None else cwd
    found = [cwd / "notebooks", cwd, CHECKOUT / "notebooks"]
    return list(dict.fromkeys(p.resolve() for p in found))


def notebook_dir(given: Path | None = None, cwd: Path | None = None) -> Path:
    """The folder given (--notebooks), or the first candidate that holds notebooks."""
    if given is not None:
        if not all_notebooks(given):
            raise ParameterError(f"--notebooks {given}: no notebooks ({PATTERN}) there")
        return Path(given).resolve()
    candidates = candidate_dirs(cwd)
    for path in candidates:
        if all_notebooks(path):
            return path
    raise ParameterError(
        f"no notebooks ({PATTERN}) found; looked in {', '.join(map(str, candidates))}: "
        "run from the suite's folder, or give --notebooks DIR"
    )


def find_notebook(name: str, folder: Path) -> Path:
    """A notebook by number ('04'), stem ('04_pos_weight') or file name."""
    notebooks = all_notebooks(folder)
    stem = Path(name).stem
    matches = [p for p in notebooks if p.stem == stem or p.stem.split("_", 1)[0] == stem]
    if len(matches) != 1:
        known = ", ".join(p.stem for p in notebooks)
        raise ParameterError(f"notebook {name!r} not found; known notebooks: {known}")
    return matches[0]
