"""Build the suite's static book (`make book`): a site to read without a kernel.

Sphinx with MyST-NB and sphinx-book-theme renders the committed, executed notebooks
without executing them. They are found by name (notebooks/[0-9][0-9]_*.ipynb, in order;
the notebook whose name holds "at_scale" goes last, as the appendix) and copied into a
staging folder; only the copies are changed, for reading:

- the Colab badge (an image from the web) becomes a text link, with a download of the
  notebook (the committed file itself) and the lesson's reading time;
- exercise solutions (nbgrader's `### BEGIN SOLUTION` markers) and the Colab set-up cell
  go behind a toggle, outputs and all; the checks' stored feedback stays in view;
- an explorer (an ipywidgets output with a stored figure) shows its figure and numbers,
  with a note that it moves in a live kernel; progress bars (widgets with no figure) go;
- each figure gets alt text from the section it belongs to;

The landing page lists the lessons with their reading times and the instructors' page the
exercises, both from the notebooks. The build needs no network: math is written as MathML
at build time (latex2mathml), so the site loads no MathJax and no font.

    .venv/bin/python book/build.py [--out build/book]
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import math
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# first: bce_suite spares nbformat's jsonschema a slow import it does not need (see there)
import bce_suite  # noqa: F401

# isort: split
import nbformat

from bce_suite.notebooks import PATTERN, all_notebooks

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
NOTEBOOKS = ROOT / "notebooks"
APPENDIX = "at_scale"
WIDGET = "application/vnd.jupyter.widget-view+json"
LESSONS_MARK = "<!-- lessons -->"
EXERCISES_MARK = "<!-- exercises -->"
# how the reading time is estimated (said on the landing page)
WORDS_PER_MINUTE, CODE_LINES_PER_MINUTE, MINUTES_PER_EXERCISE = 200, 10, 5
HEADING = re.compile(r"^#{1,6}\s+(.+)$", re.MULTILINE)
LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
TITLE = re.compile(r"^#\s+(.+)$", re.MULTILINE)
EXERCISE = re.compile(r"^###\s+Exercise\s+(\d+\.\d+)\s+·\s+(.+)$", re.MULTILINE)


def _tool(name: str):
    """tools/<name>.py as a module (the tools are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"_book_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


colab = _tool("colab")
student_edition = _tool("student_edition")
repository_url = colab.repository_url


def colab_link(notebook: str) -> str:
    """The Colab URL of notebooks/<notebook>, as its badge links it."""
    return re.search(r"\]\(([^)]*)\)$", colab.badge(repository_url(), notebook))[1]


def is_solution(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and student_edition.BEGIN in cell.source


def is_explorer(output: nbformat.NotebookNode) -> bool:
    """An explorer's output: an ipywidgets view with a stored figure."""
    data = output.get("data", {})
    return WIDGET in data and "image/png" in data


def plain(markdown: str) -> str:
    """Markdown as plain words, for alt text: no markup, links' targets or TeX's marks."""
    text = re.sub(LINK, r"\1", markdown)
    text = re.sub(r"[`*$\\]|<[^>]+>", "", text)
    return " ".join(text.split())


def first_sentence(text: str) -> str:
    """The first sentence of plain text (up to the first full stop before a capital)."""
    return re.split(r"(?<=[.!?])\s+(?=[A-Z(])", text, maxsplit=1)[0]


def title_index(nb: nbformat.NotebookNode, name: str) -> int:
    """The index of the markdown cell with the notebook's title (its first `# ` heading)."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and TITLE.search(cell.source):
            return i
    raise ValueError(f"{name}: no title (no markdown cell has a `# ` heading)")


@dataclass
class Lesson:
    path: Path
    title: str  # the notebook's first heading, e.g. "01 · Binary cross-entropy, ..."
    summary: str  # what "you will" do in it, from its introduction
    minutes: int
    exercises: list[tuple[str, str]]  # (number, title)
    explorers: int
    source: bytes  # the notebook as read once: its page and its download are the same one

    @property
    def docname(self) -> str:
        return f"notebooks/{self.path.stem}"

    @property
    def appendix(self) -> bool:
        return APPENDIX in self.path.stem


def read_lesson(path: Path) -> Lesson:
    """What the landing page says of a notebook, read from it."""
    source = path.read_bytes()
    nb = nbformat.reads(source.decode(), as_version=4)
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                raise ValueError(
                    f"{path.name}: cell {i} stopped with {output.ename}: {output.evalue}; "
                    "the book shows the stored outputs: run `make notebooks` first"
                )
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    title_cell = title_index(nb, path.name)
    title = TITLE.search(nb.cells[title_cell].source)
    intro = colab.BADGE_RE.sub("", TITLE.sub("", nb.cells[title_cell].source, count=1))
    intro = re.sub(LINK, r"\1", " ".join(intro.split()))  # markdown kept, links' text only
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z])", intro)
    summary = next((s for s in sentences if "you will" in s), sentences[0])
    if "you will" in summary:
        summary = "You will" + summary.split("you will", 1)[1]
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    words = sum(len(s.split()) for s in markdown)
    lines = sum(1 for s in code for line in s.splitlines() if line.strip())
    exercises = [m.groups() for s in markdown for m in EXERCISE.finditer(s)]
    minutes = (
        words / WORDS_PER_MINUTE
        + lines / CODE_LINES_PER_MINUTE
        + MINUTES_PER_EXERCISE * sum(map(is_solution, nb.cells))
    )
    minutes = 5 * math.ceil(minutes / 5)
    explorers = sum(map(is_explorer, (o for c in nb.cells for o in c.get("outputs", []))))
    return Lesson(path, title[1].strip(), summary, minutes, exercises, explorers, source)


def reading_order(notebook_dir: Path = NOTEBOOKS) -> list[Lesson]:
    """The lessons in the order of their numbers, the appendix last."""
    lessons = [read_lesson(p) for p in all_notebooks(notebook_dir)]
    if not lessons:
        raise ValueError(f"no notebooks ({PATTERN}) in {notebook_dir}")
    return sorted(lessons, key=lambda lesson: lesson.appendix)  # stable: numbers kept


def toggle(cell: nbformat.NotebookNode, what: str) -> None:
    """Hide a code cell behind a "Show <what>" toggle, its outputs too (a solution's output
    would give the answer away)."""
    tags = cell.metadata.setdefault("tags", [])
    tags.append("hide-cell")
    cell.metadata.setdefault("mystnb", {}).update(
        code_prompt_show=f"Show {what}", code_prompt_hide=f"Hide {what}"
    )


def explorer_note(colab_url: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(
        "```{note}\n**In a live kernel this figure moves.** In JupyterLab or "
        f"[Colab]({colab_url}) the cell below draws sliders, and the figure and its numbers "
        "follow them as you move them. Here they are shown at the default values.\n```"
    )


def explorer_outputs(output: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """An explorer's stored figure, then its numbers, without the widget (no kernel)."""
    data = output["data"]
    figure = nbformat.v4.new_output(
        "display_data", data={"image/png": data["image/png"]}, metadata=output.get("metadata")
    )
    text = data.get("text/plain", "")
    return [figure] + ([nbformat.v4.new_output("stream", text=text)] if text else [])


def stage_notebook(lesson: Lesson) -> nbformat.NotebookNode:
    """A copy of the lesson's notebook, changed for reading (see the module's docstring)."""
    nb = nbformat.reads(lesson.source.decode(), as_version=4)
    name, url = lesson.path.name, colab_link(lesson.path.name)
    links = (
        f"[Open in Colab]({url}) · "
        f'<a href="../_sources/notebooks/{name}" download>Download the notebook</a> · '
        f"about {lesson.minutes} minutes"
    )
    title = nb.cells[title_index(nb, name)]
    if colab.BADGE_RE.search(title.source):
        title.source = colab.BADGE_RE.sub(links, title.source, count=1)
    else:
        first, _, rest = title.source.partition("\n")
        title.source = f"{first}\n{links}\n{rest}"
    bootstrap = colab.bootstrap_source(repository_url()).strip()
    cells, section, prose = [], "", ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            section = plain((HEADING.findall(cell.source) or [section])[-1])
            prose = first_sentence(plain(HEADING.sub("", cell.source))) or prose
        elif cell.cell_type == "code":
            context = f'in "{section}": {prose}' if section else prose
            cell = stage_code_cell(cell, context, url, cells)
            if cell.source.strip() == bootstrap:
                toggle(cell, "the Colab set-up cell")
        cells.append(cell)
    nb.cells = cells
    return nb


def stage_code_cell(cell, context: str, colab_url: str, cells: list) -> nbformat.NotebookNode:
    """The code cell for reading; an explorer's note is appended to `cells` before it."""
    cell = copy.deepcopy(cell)
    if is_solution(cell):
        toggle(cell, "the solution")
    outputs, explorer = [], False
    for output in cell.get("outputs", []):
        if WIDGET not in output.get("data", {}):
            outputs.append(output)
        elif is_explorer(output):  # its stored figure at the defaults
            explorer = True
            outputs += explorer_outputs(output)
        # else a widget with nothing to show without a kernel (a progress bar): left out
    cell.outputs = outputs
    if explorer:
        cells.append(explorer_note(colab_url))
    if any("image/png" in o.get("data", {}) for o in outputs):
        what = "The explorer's figure at its default values" if explorer else "Figure"
        alt = f"{what} {context}".strip()
        cell.metadata.setdefault("mystnb", {})["image"] = {"alt": alt}
    return cell


def lessons_markdown(lessons: list[Lesson]) -> str:
    """The landing page's list of lessons (then its appendix, under its own heading) and
    the book's tables of contents."""
    items = {"Lessons": [], "Appendix": []}
    for lesson in lessons:
        n, e = len(lesson.exercises), lesson.explorers
        exercises = f", {n} exercise{'s' * (n != 1)}" if n else ""
        exercises += f", {'an' if e == 1 else e} explorer{'s' * (e != 1)}" if e else ""
        items["Appendix" if lesson.appendix else "Lessons"].append(
            (
                lesson.docname,
                f"1. **[{lesson.title}]({lesson.docname}.ipynb)** "
                f"(about {lesson.minutes} minutes{exercises}). {lesson.summary}",
            )
        )
    text = "\n".join(item for _, item in items["Lessons"])
    if items["Appendix"]:
        text += "\n\n### Appendix\n\n" + "\n".join(item for _, item in items["Appendix"])
    toctrees = {caption: [doc for doc, _ in entries] for caption, entries in items.items()}
    toctrees["For instructors"] = ["instructors"]
    blocks = [
        f"```{{toctree}}\n:hidden:\n:caption: {caption}\n\n" + "\n".join(docs) + "\n```"
        for caption, docs in toctrees.items()
        if docs
    ]
    return text + "\n\n" + "\n\n".join(blocks)


def exercises_markdown(lessons: list[Lesson]) -> str:
    """The instructors' table of exercises."""
    rows = [
        f"| {number} | [{title}]({lesson.docname}.ipynb) |"
        for lesson in lessons
        for number, title in lesson.exercises
    ]
    return "| exercise | you write |\n|---|---|\n" + "\n".join(rows)


def fill(page: Path, mark: str, text: str) -> str:
    source = page.read_text()
    if mark not in source:
        raise ValueError(f"{page}: the line {mark!r} (where the generated part goes) is missing")
    return source.replace(mark, text)


def stage(staging: Path, lessons: list[Lesson]) -> None:
    """The Sphinx source folder: the book's pages and the changed copies of the notebooks."""
    (staging / "notebooks").mkdir(parents=True)
    (staging / "index.md").write_text(
        fill(BOOK / "index.md", LESSONS_MARK, lessons_markdown(lessons))
    )
    (staging / "instructors.md").write_text(
        fill(BOOK / "instructors.md", EXERCISES_MARK, exercises_markdown(lessons))
    )
    for lesson in lessons:
        nbformat.write(stage_notebook(lesson), staging / "notebooks" / lesson.path.name)


def clear(out: Path) -> None:
    """Remove an earlier build, and refuse to remove anything that is not one."""
    if out.exists() and any(out.iterdir()):
        if not (out / ".buildinfo").exists():
            raise ValueError(
                f"{out} is not an earlier build of the book (no .buildinfo): "
                "give an empty or new folder"
            )
        shutil.rmtree(out)


def build(out: Path, quiet: bool = True) -> list[Lesson]:
    """Build the site into `out` (replacing an earlier build there); return its lessons."""
    from sphinx.cmd.build import build_main

    clear(out)
    lessons = reading_order()
    with tempfile.TemporaryDirectory(prefix="book-") as tmp:
        staging = Path(tmp) / "src"
        stage(staging, lessons)
        args = ["-b", "html", "-c", str(BOOK), "-d", str(Path(tmp) / "doctrees"), "-W"]
        args += ["--keep-going", "-q"] if quiet else []
        if build_main([*args, str(staging), str(out)]) != 0:
            raise RuntimeError("sphinx-build failed (its messages are above)")
    # the download is the committed notebook itself, not the staged copy
    for lesson in lessons:
        (out / "_sources" / "notebooks" / lesson.path.name).write_bytes(lesson.source)
    return lessons


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "book", help="the site")
    parser.add_argument("--verbose", action="store_true", help="Sphinx's progress too")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        lessons = build(args.out.resolve(), quiet=not args.verbose)
    except (ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    print(f"{args.out}/index.html: {len(lessons)} notebooks, built in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
