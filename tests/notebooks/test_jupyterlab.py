"""The notebooks with an explorer in JupyterLab's own UI in headless Chromium, as a learner
uses them.

Each runs through the UI (Run All, then save) at the test parameter set (the runner's
--quick; papermill injects it after the parameters cell), and its explorer's check
(explorer_checks.py) moves it on the same page: the widgets need a live kernel. The UI path
is the same for every notebook, and these runs prove it; test_jupyterlab_as_run.py opens
the others as their runs left them. The server and browser: jupyterlab.py. Screenshots are
saved to tests/artifacts/.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tests.checkout import NOTEBOOK_DIR
from tests.notebooks.explorer_checks import EXPLORER_CHECKS
from tests.notebooks.jupyterlab import (  # the fixtures lab and browser among them
    ARTIFACTS,
    FIGURES_RENDERED,
    KERNEL_READY,
    RAW_TEX,
    RUN_FINISHED,
    RUN_IN_THE_UI,
    browser,  # noqa: F401
    click_menu,
    figures,
    lab,  # noqa: F401
)

pytestmark = [pytest.mark.notebook, pytest.mark.browser]


@pytest.mark.parametrize("notebook", RUN_IN_THE_UI)
def test_notebook_runs_in_jupyterlab_and_its_explorer_answers(lab, browser, notebook):  # noqa: F811
    url, token, _ = lab
    committed = nbformat.read(NOTEBOOK_DIR / notebook, as_version=4)
    n_figures = figures(committed.cells)
    page = browser.new_page()
    try:
        page.goto(f"{url}/lab/tree/{notebook}?reset&token={token}")
        page.wait_for_function(KERNEL_READY, timeout=90_000, polling=250)
        click_menu(page, "Edit", "editmenu:clear-all")
        click_menu(page, "Run", "runmenu:run-all")
        page.wait_for_function(RUN_FINISHED, timeout=240_000, polling=500)
        page.wait_for_function(f"() => ({FIGURES_RENDERED})() >= {n_figures}", timeout=30_000)
        page.keyboard.press("Control+s")
        page.wait_for_function(
            "() => !document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty')",
            timeout=30_000,
        )
        math = page.evaluate(RAW_TEX)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{Path(notebook).stem}.png"), full_page=True)
        with urllib.request.urlopen(f"{url}/api/contents/{notebook}?content=1&token={token}") as r:
            saved = json.load(r)["content"]
        EXPLORER_CHECKS[notebook](page)  # its explorer, moved as a learner would, here
    finally:
        page.close()
    code = [c for c in saved["cells"] if c["cell_type"] == "code"]
    errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"{notebook}: {errors[0]['ename']}: {errors[0]['evalue']}"
    assert all(c["execution_count"] for c in code), "every code cell ran"
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    assert figures(code) == n_figures, "every figure of the committed notebook rendered"
    n_markdown = sum(c.cell_type == "markdown" for c in committed.cells)
    assert math["cells"] == n_markdown, "every markdown cell rendered"
    assert math["errors"] == 0 and math["raw"] == [], f"TeX shown raw: {math['raw'][:1]}"
