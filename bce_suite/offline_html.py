"""Executed notebooks as HTML pages that need no network: math as MathML, no CDN scripts."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import nbformat
from jinja2 import DictLoader, pass_context
from latex2mathml.converter import convert
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

# nbconvert's lab page without what it fetches from a CDN: MathJax (the math arrives as
# MathML, which browsers draw themselves), require.js (for widgets; a report keeps none)
# and mermaid (no diagrams in these notebooks)
TEMPLATE = "offline.html.j2"
_TEMPLATES = DictLoader(
    {
        TEMPLATE: """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
    }
)


def mathml(tex: str, display: str = "inline") -> str:
    """TeX as MathML ("inline" or "block"); TeX latex2mathml cannot read stays as code."""
    try:
        return convert(tex, display=display)
    except Exception:  # latex2mathml raises several kinds for a command it lacks
        return f"<code>{html.escape(tex)}</code>"


class MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer with math as MathML, and pictures from the web (the
    Colab badge) as their alt text: the link around them stays."""

    def inline_math(self, body: str) -> str:
        return mathml(body)

    def block_math(self, body: str) -> str:
        return mathml(body, "block")

    def latex_environment(self, name: str, body: str) -> str:
        return mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", "block")

    def image(self, text: str, url: str, title: str | None = None) -> str:
        if url.startswith(("http://", "https://")):
            return html.escape(text)
        return super().image(text, url, title)


class OfflineHTMLExporter(HTMLExporter):
    """HTMLExporter for pages that open without a network connection."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(extra_loaders=[_TEMPLATES], template_file=TEMPLATE, **kwargs)

    @pass_context
    def markdown2html(self, context: Any, source: str) -> str:
        cell = context.get("cell", {})
        renderer = MathMLRenderer(
            escape=False,
            attachments=cell.get("attachments", {}),
            embed_images=self.embed_images,
            path=context.get("resources", {}).get("metadata", {}).get("path", ""),
            anchor_link_text=self.anchor_link_text,
            exclude_anchor_links=self.exclude_anchor_links,
            **self.lexer_options,
        )
        return MarkdownWithMath(renderer=renderer).render(source)


def html_page(executed: Path) -> str:
    """An executed notebook as a standalone HTML page that needs no network."""
    body, _ = OfflineHTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    return body
