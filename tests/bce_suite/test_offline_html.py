"""Rendered notebooks need no network: math as MathML, web pictures as their alt text."""

import nbformat

from bce_suite.offline_html import OfflineHTMLExporter, html_page, mathml

BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB = "https://colab.research.google.com/github/x/y/blob/main/notebooks/01.ipynb"


def render(markdown: str) -> str:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(markdown)])
    page, _ = OfflineHTMLExporter().from_notebook_node(nb)
    return page


def test_math_becomes_mathml_and_nothing_is_fetched():
    page = render(f"[![Open In Colab]({BADGE})]({COLAB})\n\nA $\\sigma(x)$ and\n\n$$a^2$$")
    assert 'src="http' not in page, "no script or picture from the network"
    assert "mathjax" not in page.lower() and "require.min.js" not in page
    assert f'<a href="{COLAB}">Open In Colab</a>' in page  # the badge: its link, as text
    assert '<math display="inline"' in page and "<mi>σ</mi>" in page
    assert '<math display="block"' in page and "<msup><mi>a</mi><mn>2</mn></msup>" in page


def test_tex_latex2mathml_cannot_read_stays_visible_as_code():
    assert mathml("x^") == "<code>x^</code>"  # a superscript with nothing to raise
    assert mathml("a < b").startswith("<math")


def test_html_page_renders_an_executed_notebook_file(tmp_path):
    output = nbformat.v4.new_output("stream", name="stdout", text="square=9\n")
    cells = [
        nbformat.v4.new_markdown_cell("# A square\n\n$x^2$"),
        nbformat.v4.new_code_cell("print('square=9')", outputs=[output]),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), tmp_path / "sq.ipynb")
    page = html_page(tmp_path / "sq.ipynb")
    assert page.startswith("<!DOCTYPE html>") and "square=9" in page
    assert "<msup><mi>x</mi><mn>2</mn></msup>" in page and 'src="http' not in page
