"""Pages from Jinja2 templates (autoescaped), and model output made safe to show.

Model output is hostile. ``markdown`` turns it into HTML with markdown-it-py (raw HTML
off: a ``<script>`` in a reply is text), then nh3 keeps only formatting tags: no script,
no style, no event handlers, no images (so nothing remote is fetched), and links only
to http, https and mailto. Jinja2 and markdown-it are imported on the first page, so a
daemon whose console nobody opens never loads them."""

from __future__ import annotations

import datetime as dt
import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from markupsafe import Markup

TEMPLATES = Path(__file__).parent / "templates"

TAGS = {
    "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
    "del", "s",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}
NONE = "\u2013"  # an en dash: no value


@functools.cache
def _markdown_it() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def markdown(text: str | None) -> Markup:
    """``text`` as Markdown, sanitised: safe to put in a page."""
    import nh3
    from markupsafe import Markup

    html = _markdown_it().render(text or "")
    clean = nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return Markup(clean)  # nh3 has just made it safe


@functools.cache
def environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template is HTML
        undefined=jinja2.ChainableUndefined,  # a result shows the keys it has
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(markdown=markdown, ms=ms, usd=usd, when=when, epoch=epoch, tokens=tokens)
    return env


def page(name: str, **context: Any) -> str:
    return str(environment().get_template(name).render(**context))


# --- filters ------------------------------------------------------------------------


def ms(value: Any) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return NONE
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def usd(value: Any) -> str:
    if not isinstance(value, int | float):
        return NONE
    if value == 0 or value >= 1:
        return f"${value:,.2f}"
    return f"${value:.6f}" if value < 0.01 else f"${value:.4f}"


def tokens(usage: Any) -> str:
    if not isinstance(usage, dict):
        return NONE
    return f"{usage.get('input_tokens', 0)} in / {usage.get('output_tokens', 0)} out"


def when(value: Any) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    if not isinstance(value, str):
        return NONE
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def epoch(value: Any) -> str:
    """Unix seconds as ``YYYY-MM-DD HH:MM UTC``."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        return NONE
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
