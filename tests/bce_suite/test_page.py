"""index.html (bce_suite.page): each run's parameters, numbers and figure thumbnails; and
a sweep's page opened in headless Chromium (launched as tests/notebooks/jupyterlab.py
does): every figure loads, every link resolves inside the folder, and neither the page nor
the rendered notebooks it links to ask the network for anything."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import nbformat
import pytest

from bce_suite import page, resume
from bce_suite.engine import run_task
from bce_suite.parameters import effective_parameters
from bce_suite.reports import write_sweep_report
from bce_suite.runs import Job, RunResult
from tests.notebooks.jupyterlab import browser  # noqa: F401 (the fixture: headless Chromium)

SQUARE = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks" / "01_square.ipynb"


def png() -> bytes:
    """A small figure drawn by matplotlib, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def test_the_page_shows_parameters_numbers_and_figure_thumbnails(tmp_path):
    figure = png()
    figure_output = nbformat.v4.new_output(
        "display_data", data={"image/png": base64.b64encode(figure).decode()}
    )
    cells = [nbformat.v4.new_code_cell("plot()", outputs=[figure_output])]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), tmp_path / "sq5.ipynb")
    (tmp_path / "sq5.html").write_text("<html></html>")
    good = RunResult("01_square", "ok", 1.0, {"square": 25, "half": 12.5}, run="sq5",
                     params={"x": 5, "figure": True})  # fmt: skip
    failed = RunResult("02_fails", "failed", 0.1, error="ValueError: boom", run="f")
    page.write_index(tmp_path, [good, failed])
    index = (tmp_path / "index.html").read_text()
    assert "<title>BCE notebook runs</title>" in index and "2 runs: 1 ok, 1 failed." in index
    assert "x=5, figure=True" in index and "square = 25" in index and "half = 12.5" in index
    assert "<a href='sq5.html'>sq5</a>" in index and "<td>f</td>" in index, "f has no page"
    assert "<td class='failed'>failed</td>" in index and "ValueError: boom" in index
    assert (tmp_path / page.FIGURES / "sq5-1.png").read_bytes() == figure
    assert f"src='{page.FIGURES}/sq5-1.png'" in index
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")], "no temporary files"


@pytest.fixture
def sweep_folder(tmp_path):
    """A two-run sweep of the fixture notebook with a figure each, reported."""
    text, results = SQUARE.read_text(), []
    for x in (2, 3):
        params = {"x": x, "figure": True}
        job = Job(SQUARE, params, f"01_square__x={x}", effective_parameters(SQUARE, params))
        results.append(resume.save(tmp_path, job, run_task(text, job.run, params, f"t{x}")))
    write_sweep_report(tmp_path, ["x"], results)
    return tmp_path


IMAGES = """() => [...document.images].map(i => ({src: i.getAttribute('src'),
    loaded: i.complete && i.naturalWidth > 0}))"""
LINKS = "() => [...document.links].map(a => a.getAttribute('href'))"


@pytest.mark.notebook
@pytest.mark.browser
def test_the_report_page_loads_its_figures_and_links(browser, sweep_folder):  # noqa: F811
    page = browser.new_page()
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith("file://") else outside.append(r.url))
    page.goto((sweep_folder / "index.html").as_uri())
    page.wait_for_load_state("load")
    assert page.title() == "Sweep of 01_square over x"
    images = page.evaluate(IMAGES)
    sources = sorted(i["src"] for i in images)
    assert sources == sorted(
        ["sweep.png", "figures/01_square__x=2-1.png", "figures/01_square__x=3-1.png"]
    )
    assert all(i["loaded"] for i in images), images
    assert outside == [], "the page needs no network"
    links = page.evaluate(LINKS)
    assert set(links) >= {"01_square__x=2.html", "01_square__x=3.html", "sweep.csv"}
    text = page.inner_text("body")
    assert "x=2" in text and "square = 4" in text and "square = 9" in text
    for href in sorted(set(links)):
        target = sweep_folder / href
        assert target.is_file() and target.resolve().parent == sweep_folder.resolve(), href
        if href.endswith(".html"):  # the rendered notebook opens, its figure inline
            page.goto(target.as_uri())
            page.wait_for_load_state("load")
            assert page.locator("img").count() >= 1
            assert "square=" in page.inner_text("body")
            # its math drawn by the browser from MathML, x^2 as a superscript
            assert page.locator("math msup").count() == 1
            assert page.locator("math msup").text_content() == "x2"
    assert outside == [], "neither the page nor the rendered notebooks need the network"
    page.close()
