"""The notebooks in JupyterLab's own UI in headless Chromium, as a learner sees them.

Each notebook with an explorer runs through the UI (Run All, then save) at the test
parameter set (the runner's --quick; papermill injects it after the parameters cell), and
its explorer's check (explorer_checks.py) moves it on the same page: the widgets need a
live kernel. Every other notebook is opened as the session's run at its defaults left it
(the run its committed outputs are compared with, tests/conftest.py's store): its markdown
and math render, and every figure shows. The UI path itself is the same for every
notebook, and the runs prove it.

Needs Debian's chromium (/usr/bin/chromium) and Python's playwright; `.ci/run` installs
chromium. Screenshots are saved to tests/artifacts/.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest
from papermill.parameterize import parameterize_notebook

from bce_suite.parameters import QUICK_PARAMS
from tests.checkout import NOTEBOOK_DIR, all_notebooks
from tests.notebooks.explorer_checks import EXPLORER_CHECKS

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
RUN_IN_THE_UI = sorted(EXPLORER_CHECKS)
OPENED_AS_RUN = [p.name for p in all_notebooks() if p.name not in EXPLORER_CHECKS]

pytestmark = [pytest.mark.notebook, pytest.mark.browser]

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail("CI must install Debian's chromium (see .ci/run)", pytrace=False)
    pytest.skip("Debian's chromium is not installed here", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on loopback over a folder with a copy of each notebook run in
    the UI (the others are written there by their test), stopped afterwards."""
    root = tmp_path_factory.mktemp("lab")
    work = root / "notebooks"
    work.mkdir()
    for name in RUN_IN_THE_UI:  # at the test parameter set: the point here is the UI
        copy = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
        if quick := QUICK_PARAMS.get(Path(name).stem):
            copy.metadata["papermill"] = {}  # where papermill records what it injected
            copy = parameterize_notebook(copy, quick)
        nbformat.write(copy, work / name)
    dirs = {name: root / name for name in ("config", "data", "runtime", "ipython", "mpl", "ws")}
    settings = root / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    notebook_settings = root / "settings" / "@jupyterlab" / "notebook-extension"
    notebook_settings.mkdir(parents=True)
    # every cell rendered, not only those in view, so the checks below see all the markdown
    (notebook_settings / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"})
    )
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        "MPLCONFIGDIR": str(dirs["mpl"]),
    }
    port, token = free_port(), uuid.uuid4().hex
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={work}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--no-browser",
        "--allow-root",
        f"--IdentityProvider.token={token}",
        f"--LabApp.workspaces_dir={dirs['ws']}",
        f"--LabApp.user_settings_dir={root / 'settings'}",
    ]
    log = open(root / "server.log", "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((root / "server.log").read_text()) from None
                time.sleep(0.3)
        yield url, token, work
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Debian Chromium with a fresh user-data dir."""
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


KERNEL_READY = f"""() => {{
    const panel = document.querySelector('{PANEL}');
    const name = panel && panel.querySelector('.jp-KernelName');
    const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
    return !!name && !name.textContent.includes('No Kernel') && !!indicator
        && indicator.getAttribute('data-status') === 'idle';
}}"""

RUN_FINISHED = f"""() => {{
    const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
    if (!indicator || indicator.getAttribute('data-status') !== 'idle') return false;
    const prompts = [...document.querySelectorAll('{PANEL} .jp-CodeCell .jp-InputArea-prompt')]
        .map(p => p.textContent.trim());
    if (prompts.some(t => t.startsWith('[*]'))) return false;
    const stderr = document.querySelector(
        '{PANEL} [data-mime-type="application/vnd.jupyter.stderr"]');
    return prompts.every(t => /^\\[\\d+\\]:$/.test(t)) || !!stderr;
}}"""

# Text of the rendered markdown, math and code left out: a backslash there is TeX that
# MathJax did not typeset (e.g. an escaped underscore inside \text{}), shown raw.
RAW_TEX = f"""() => {{
    const cells = [...document.querySelectorAll('{PANEL} .jp-RenderedMarkdown')];
    const errors = cells.filter(c => c.querySelector('mjx-merror')).length;
    const raw = cells.map(c => {{
        const copy = c.cloneNode(true);
        copy.querySelectorAll('mjx-container, code, pre, script').forEach(n => n.remove());
        return copy.textContent;
    }}).filter(t => t.includes('\\\\'));
    // inside typeset math, MathJax's assistive MathML holds the text it shows
    const shown = [...document.querySelectorAll('{PANEL} .jp-RenderedMarkdown mjx-assistive-mml')]
        .map(m => m.textContent).filter(t => t.includes('\\\\'));
    return {{cells: cells.length, errors, raw: [...raw, ...shown]}};
}}"""

FIGURES_RENDERED = f"""() => [...document.querySelectorAll('{PANEL} .jp-OutputArea-output img')]
    .filter(img => img.complete && img.naturalWidth > 0).length"""


def click_menu(page, menu: str, command: str) -> None:
    page.click(f".lm-MenuBar-itemLabel:text-is('{menu}')")
    page.click(f".lm-Menu-item[data-command='{command}']")


def figures(cells: list) -> int:
    """How many figures (PNG outputs) the cells show."""
    return sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))


@pytest.mark.parametrize("notebook", RUN_IN_THE_UI)
def test_notebook_runs_in_jupyterlab_and_its_explorer_answers(lab, browser, notebook):
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


# Every markdown cell rendered and MathJax done with it: nothing left raw.
MATH_DONE = f"""(n) => {{
    const math = ({RAW_TEX})();
    return math.cells === n && math.raw.length === 0;
}}"""


@pytest.mark.parametrize("notebook", OPENED_AS_RUN)
def test_notebook_as_run_at_its_defaults_renders_in_jupyterlab(lab, browser, executions, notebook):
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
