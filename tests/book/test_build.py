"""The book (`make book`, book/build.py) built from the committed notebooks and read in
headless Chromium (launched as tests/notebooks/jupyterlab.py does), served from a loopback
port with every request outside the site refused: each page loads with no console error
and no failed request, its math is typeset, its figures load and have alt text, its links
resolve; search works; solutions hide behind a toggle, feedback and explorers' figures
show; a phone-sized screenshot is kept in tests/artifacts/book_phone.png.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import importlib.util
import re
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from tests.bce_suite.test_page import IMAGES
from tests.checkout import REPO_ROOT, all_notebooks
from tests.notebooks.jupyterlab import ARTIFACTS, browser  # noqa: F401 (the fixture: headless Chromium)

pytestmark = pytest.mark.browser

BUILD = REPO_ROOT / "book" / "build.py"
BEGIN = "### BEGIN SOLUTION"
WIDGET = "application/vnd.jupyter.widget-view+json"
COLAB = re.compile(r"https://colab\.research\.google\.com/github/[^)\s]+\.ipynb")
LIVE_NOTE = "In a live kernel this figure moves."
PHONE = {"width": 390, "height": 844}

# Math arrives as MathML: formulas latex2mathml could not read (left as TeX in a <code>)
# or that the browser did not draw, MathML errors, and text outside math and code that
# looks like TeX (a backslash command, or $...$).
MATH = r"""() => {
    const formulas = [...document.querySelectorAll('.math')];
    const untypeset = formulas.filter(f => !f.querySelector('math') || f.querySelector('code')
        || (f.checkVisibility() && f.querySelector('math').getBoundingClientRect().width === 0))
        .map(f => f.textContent.slice(0, 80));
    const copy = document.body.cloneNode(true);
    copy.querySelectorAll('math, pre, code, script, style').forEach(n => n.remove());
    const raw = [...copy.textContent.matchAll(/\\[a-zA-Z]+|\$[^$\s][^$]*\$/g)].map(m => m[0]);
    return {in_article: document.querySelectorAll('article .math').length, untypeset, raw,
            errors: document.querySelectorAll('merror').length};
}"""
# Display formulas whose start lies left of their box (out of reach of its scrollbar).
CUT_FORMULAS = """() => [...document.querySelectorAll('div.math')].filter(d =>
    d.querySelector('math').getBoundingClientRect().left < d.getBoundingClientRect().left - 1)
    .map(d => d.textContent.slice(0, 40))"""
ALT = """() => [...document.querySelectorAll('article img, main img')]
    .filter(i => !(i.getAttribute('alt') || '').trim()).map(i => i.getAttribute('src'))"""


@functools.cache
def load_build():
    """book/build.py as a module (a script beside the book's sources, not a package)."""
    spec = importlib.util.spec_from_file_location("book_build", BUILD)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lesson(title: str, outputs=()) -> nbformat.NotebookNode:
    """A notebook as small as the book takes: a title, and a code cell with `outputs`."""
    code = nbformat.v4.new_code_cell("x = 1", outputs=list(outputs))
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {title}"), code])


def test_the_appendix_goes_last_whatever_its_number(tmp_path):
    for name in ("01_first", "02_bce_at_scale", "03_third"):
        nbformat.write(lesson(name), tmp_path / f"{name}.ipynb")
    nbformat.write(lesson("not a lesson"), tmp_path / "notes.ipynb")
    order = load_build().reading_order(tmp_path)
    assert [x.path.stem for x in order] == ["01_first", "03_third", "02_bce_at_scale"]
    assert [x.appendix for x in order] == [False, False, True]


def test_a_notebook_stopped_by_an_error_is_refused_by_name(tmp_path):
    error = nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="boom")
    nbformat.write(lesson("01", [error]), tmp_path / "01_broken.ipynb")
    with pytest.raises(ValueError, match=r"01_broken.ipynb: cell 1 stopped with Zero.*make not"):
        load_build().reading_order(tmp_path)


def test_the_build_replaces_only_an_earlier_build(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("not a book")
    assert load_build().main(["--out", str(tmp_path)]) == 1
    assert "is not an earlier build of the book" in capsys.readouterr().err
    assert (tmp_path / "mine.txt").exists()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test reports failed requests itself
        pass


@pytest.fixture(scope="module")
def built() -> dict[str, bytes]:
    """The notebooks the book is built from, as they are at the build (other work may change
    the checkout's meanwhile), by stem."""
    return {p.stem: p.read_bytes() for p in all_notebooks()}


def notebook(built: dict[str, bytes], stem: str) -> nbformat.NotebookNode:
    return nbformat.reads(built[stem].decode(), as_version=4)


@pytest.fixture(scope="module")
def site(tmp_path_factory, built) -> Path:
    """The book, built by its command into a temporary folder."""
    out = tmp_path_factory.mktemp("book") / "site"
    done = subprocess.run(
        [sys.executable, str(BUILD), "--out", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.fixture(scope="module")
def base(site) -> str:
    """The site served over HTTP on loopback (as GitHub Pages serves it); its URL."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@contextmanager
def offline_page(browser, base):  # noqa: F811
    """A page that may load only the site: every other request is refused and recorded,
    with console errors, page errors, failed requests and HTTP errors."""
    page, problems = browser.new_page(), []
    page.add_init_script("localStorage.clear(); sessionStorage.clear();")  # a first visit

    def route(r):
        if r.request.url.startswith(base + "/"):
            r.continue_()
        else:
            problems.append(f"outside the site: {r.request.url}")
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))
    try:
        yield page, problems
    finally:
        page.close()


def open_page(page, url: str) -> None:
    """Go to `url` and wait until it has loaded, fonts included."""
    page.goto(url)
    page.evaluate("async () => { await document.fonts.ready; }")


def html_pages(site: Path) -> list[str]:
    """The site's pages (its own folders, _static and the like, left out)."""
    pages = (p.relative_to(site) for p in site.rglob("*.html"))
    return sorted(p.as_posix() for p in pages if not p.parts[0].startswith("_"))


def target(site: Path, url: str) -> tuple[Path, str]:
    """The file a URL of the site (its path from the site's root) points at, and its
    fragment."""
    parts = urlsplit(url)
    path = site / unquote(parts.path).lstrip("/")
    return (path / "index.html" if path.is_dir() else path), unquote(parts.fragment)


class References(html.parser.HTMLParser):
    """Every href and src of a page."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.found += [v for k, v in attrs if k in ("href", "src") and v]


def math_in(nb: nbformat.NotebookNode) -> int:
    """How many formulas ($...$, $$...$$) a notebook's markdown has, code spans aside."""
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return len(re.findall(r"\$\$.+?\$\$|\$[^$]+?\$", re.sub(r"`[^`]*`", "", text), re.DOTALL))


def page_title(nb: nbformat.NotebookNode) -> str:
    """A notebook's title, its first heading, as the page shows it (no code marks)."""
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return re.search(r"^# (.+)$", markdown, re.MULTILINE)[1].replace("`", "").strip()


STEMS = [p.stem for p in all_notebooks()]
PAGES = ["index.html", "instructors.html", "search.html", "genindex.html"]
PAGES += [f"notebooks/{stem}.html" for stem in STEMS]


def test_the_site_has_a_page_per_lesson_and_its_own_pages(site):
    assert html_pages(site) == sorted(PAGES)


@pytest.mark.parametrize("path", PAGES)
def test_a_page_reads_offline(browser, base, site, built, path):  # noqa: F811
    """No console error, no failed or outside request; its math typeset, its figures loaded
    with alt text; on a lesson's page, what the lesson's page must have (check_lesson)."""
    stem = Path(path).stem if path.startswith("notebooks/") else None
    with offline_page(browser, base) as (page, problems):
        open_page(page, f"{base}/{path}")
        assert page.locator("script[type*='widget']").count() == 0, "no widget without a kernel"
        math = page.evaluate(MATH)
        images = page.evaluate(IMAGES)
        missing_alt = page.evaluate(ALT)
        if stem:
            check_lesson(page, site, built, stem)
        assert problems == []
    assert math["untypeset"] == [] and math["errors"] == 0, math
    assert math["raw"] == [], f"TeX left in the text: {math['raw'][:5]}"
    assert all(i["loaded"] for i in images), images
    assert missing_alt == [], f"figures without alt text: {missing_alt}"
    if stem:
        assert math["in_article"] >= math_in(notebook(built, stem)), "every formula is there"


def check_lesson(page, site: Path, built: dict[str, bytes], stem: str) -> None:
    """Its title, Colab link and download; solutions toggled, hidden until asked for; the
    checks' stored feedback in view; each explorer's figure with the note that it moves."""
    nb = notebook(built, stem)
    code = [c for c in nb.cells if c.cell_type == "code"]
    solutions = [c for c in code if BEGIN in c.source]
    feedback = [
        o["text"].splitlines()[0]
        for c in code
        if re.search(r"^check\(", c.source, re.MULTILINE)
        for o in c.outputs
        if o.get("name") == "stdout"
    ]
    explorers = sum(
        WIDGET in o.get("data", {}) and "image/png" in o["data"] for c in code for o in c.outputs
    )
    assert page.title().startswith(page_title(nb))
    colab = page.get_by_role("link", name="Open in Colab")
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert colab.get_attribute("href") == COLAB.search(markdown)[0]
    download = page.locator("article a[download]")
    assert download.inner_text() == "Download the notebook"
    file, _ = target(site, download.evaluate("a => new URL(a.href).pathname"))
    assert file.read_bytes() == built[stem], "the download is the notebook itself"
    toggles = page.locator("details:has(summary:has-text('Show the solution'))")
    assert toggles.count() == len(solutions)
    for i, cell in enumerate(solutions):
        solution_code = toggles.nth(i).locator(".cell_input")
        assert not solution_code.is_visible(), "a solution is hidden until asked for"
        toggles.nth(i).locator("summary").click()
        assert solution_code.is_visible()
        first_line = cell.source.split(BEGIN, 1)[1].strip().splitlines()[0].strip()
        assert first_line in solution_code.inner_text()
    for line in feedback:
        assert page.get_by_text(line, exact=False).first.is_visible(), line
    notes = page.get_by_text(LIVE_NOTE)
    assert notes.count() == explorers
    for i in range(explorers):  # the note, then the explorer's cell with its figure
        cell = page.locator(f"div.admonition:has-text('{LIVE_NOTE}') + div.cell").nth(i)
        assert cell.locator("img").evaluate("i => i.naturalWidth") > 0


def test_every_reference_inside_the_site_resolves(site):
    """Every href and src of every page that stays inside the site names a file of it, and
    an anchor on a page names an id there."""
    for path in html_pages(site):
        page = site / path
        parser = References()
        parser.feed(page.read_text())
        for ref in parser.found:
            parts = urlsplit(ref)
            if parts.scheme or parts.netloc or ref.startswith("javascript:"):
                continue  # outside the site: the browser tests refuse to load any
            file = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            file = file / "index.html" if file.is_dir() else file
            assert file.is_file() and file.is_relative_to(site.resolve()), f"{path}: {ref}"
            if parts.fragment and file.suffix == ".html":
                assert f'id="{unquote(parts.fragment)}"' in file.read_text(), f"{path}: {ref}"


def test_the_lessons_come_in_order_with_the_appendix_last(browser, base, built):  # noqa: F811
    stems = list(built)
    appendix = [s for s in stems if "at_scale" in s]
    wanted = [s for s in stems if s not in appendix] + appendix
    with offline_page(browser, base) as (page, problems):
        open_page(page, f"{base}/index.html")
        hrefs = page.eval_on_selector_all(
            "article a[href*='notebooks/']", "as => as.map(a => a.getAttribute('href'))"
        )
        in_appendix = page.eval_on_selector_all(
            "article section#appendix a[href*='notebooks/']",
            "as => as.map(a => a.getAttribute('href'))",
        )
        text = page.inner_text("article")
        assert problems == []
    shown = list(dict.fromkeys(Path(urlsplit(h).path).stem for h in hrefs))
    assert shown == wanted, "the landing page lists every lesson, in reading order"
    assert appendix and [Path(urlsplit(h).path).stem for h in in_appendix] == appendix
    assert "minutes" in text and "Colab" in text and "JupyterLab" in text


@pytest.mark.parametrize("served", [True, False], ids=["http", "file"])
def test_search_finds_pos_weight_offline(browser, base, site, built, served):  # noqa: F811
    """Over HTTP, and from disk (file://): a copy of the site opened with no server."""
    root = base if served else site.as_uri()
    lesson = next(stem for stem in built if "pos_weight" in stem)
    with offline_page(browser, root) as (page, problems):
        page.goto(f"{root}/search.html?q=pos_weight")
        results = page.locator("#search-results ul.search li a")
        results.first.wait_for(timeout=30_000)
        hrefs = results.evaluate_all("as => as.map(a => a.getAttribute('href'))")
        assert any(lesson in h for h in hrefs), hrefs
        assert problems == []


def test_a_lesson_reads_on_a_phone(browser, base, built):  # noqa: F811
    lesson = next(stem for stem in built if "pos_weight" in stem)
    with offline_page(browser, base) as (page, problems):
        page.set_viewport_size(PHONE)
        open_page(page, f"{base}/notebooks/{lesson}.html")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], "nothing makes the page scroll sideways"
        assert page.evaluate(CUT_FORMULAS) == [], "a wide formula scrolls from its start"
        text_px = page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")
        assert text_px >= 16, "text at a size a phone reads without zooming"
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "book_phone.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        assert problems == []
