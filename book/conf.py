"""Sphinx configuration of the suite's book.

`make book` (book/build.py) runs Sphinx with this file on a staged copy of the notebooks:
their stored outputs are the book's (nothing is executed), and the site needs no network
to build or to read. Math is written into the pages as MathML (by latex2mathml, as the
suite's offline HTML reports do; browsers draw it themselves): no MathJax, no web fonts.
"""

from __future__ import annotations

import sys
from pathlib import Path

from docutils import nodes

from bce_suite.offline_html import mathml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import repository_url  # noqa: E402 (book/build.py, beside this file)

project = "Binary cross-entropy in PyTorch"
author = "the BCE notebook suite"
copyright = "the BCE notebook suite authors, MIT licence"

extensions = ["myst_nb"]
html_math_renderer = "mathml"  # set up below
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# The committed notebooks were executed by `make notebooks`: their outputs are the book's.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
smartquotes = False  # the notebooks' own quotes, as JupyterLab shows them

html_theme = "sphinx_book_theme"
html_title = "BCE in PyTorch"
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_last_updated_fmt = None
html_show_sourcelink = False
# Search without fetching each page for a summary: it works from file:// too (a copy of the
# site opened from disk), where browsers refuse those fetches
html_show_search_summary = False
html_theme_options = {
    "repository_url": repository_url(),
    "repository_branch": "main",
    "path_to_docs": "",  # the staged notebooks sit at notebooks/, as in the repository
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "home_page_in_toc": True,
    "show_toc_level": 2,
}
# pydata-sphinx-theme's mode for a first visit (nothing stored yet): the system's; without
# it the theme logs "Got invalid theme mode" to the console
html_context = {"default_mode": "auto"}


def visit_math(translator, node: nodes.math) -> None:
    translator.body.append(f'<span class="math">{mathml(node.astext())}</span>')
    raise nodes.SkipNode


def visit_math_block(translator, node: nodes.math_block) -> None:
    translator.body.append(f'<div class="math">{mathml(node.astext(), "block")}</div>')
    raise nodes.SkipNode


def setup(app) -> None:
    app.add_html_math_renderer("mathml", (visit_math, None), (visit_math_block, None))
