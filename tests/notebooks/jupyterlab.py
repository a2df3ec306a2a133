"""JupyterLab and headless Chromium for the browser tests: a server over a folder of
notebooks, a browser, and what the tests read off a page (figures shown, markdown and math
rendered, the kernel idle).

The tests that use them: test_jupyterlab.py (each notebook with an explorer run through the
UI, its explorer moved), test_jupyterlab_as_run.py (every other notebook opened as its run
at the defaults left it), tests/bce_suite/test_page.py and tests/book/test_build.py (their
pages in the same browser). Importing this module skips the importing test module where
Debian's chromium or playwright is missing (outside CI, where chromium must be present).
"""

from __future__ import annotations

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


# Every markdown cell rendered and MathJax done with it: nothing left raw.
MATH_DONE = f"""(n) => {{
    const math = ({RAW_TEX})();
    return math.cells === n && math.raw.length === 0;
}}"""
