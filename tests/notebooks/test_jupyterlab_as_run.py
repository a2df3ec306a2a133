"""Every notebook without an explorer in JupyterLab's own UI in headless Chromium, opened as
the session's run at its defaults left it (the run its committed outputs are compared with,
tests/conftest.py's store): its markdown and math render, and every figure shows.

It reads the runs the notebooks' own test files make, so it goes after them
(tests/conftest.py's READERS). The server and browser: jupyterlab.py. Screenshots are saved
to tests/artifacts/.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import nbformat
import pytest

from tests.checkout import NOTEBOOK_DIR
from tests.notebooks.jupyterlab import (  # the fixtures lab and browser among them
    ARTIFACTS,
    FIGURES_RENDERED,
    MATH_DONE,
    OPENED_AS_RUN,
    RAW_TEX,
    browser,  # noqa: F401
    figures,
    lab,  # noqa: F401
    sync_api,
)

pytestmark = [pytest.mark.notebook, pytest.mark.browser]


@pytest.mark.parametrize("notebook", OPENED_AS_RUN)
def test_notebook_as_run_at_its_defaults_renders_in_jupyterlab(
    lab,  # noqa: F811 (the fixture)
    browser,  # noqa: F811 (the fixture)
    executions,
    notebook,
):
    url, token, work = lab
    run = executions(Path(notebook).stem)
    nbformat.write(run.notebook, work / notebook)
    committed = nbformat.read(NOTEBOOK_DIR / notebook, as_version=4)
    n_figures, n_markdown = (
        figures(committed.cells),
        sum(c.cell_type == "markdown" for c in committed.cells),
    )
    assert figures(run.notebook.cells) == n_figures, "the run draws the committed figures"
    page = browser.new_page()
    try:
        page.goto(f"{url}/lab/tree/{notebook}?reset&token={token}")
        page.wait_for_function(f"() => ({FIGURES_RENDERED})() >= {n_figures}", timeout=60_000)
        with contextlib.suppress(sync_api.TimeoutError):  # the asserts say what is missing
            page.wait_for_function(MATH_DONE, arg=n_markdown, timeout=30_000, polling=250)
        math = page.evaluate(RAW_TEX)
        shown = page.evaluate(FIGURES_RENDERED)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{Path(notebook).stem}.png"), full_page=True)
    finally:
        page.close()
    assert shown == n_figures, "every figure of the run rendered"
    assert math["cells"] == n_markdown, "every markdown cell rendered"
    assert math["errors"] == 0 and math["raw"] == [], f"TeX shown raw: {math['raw'][:1]}"
