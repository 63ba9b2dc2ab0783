"""Plain text ↔ FHIR Narrative ``div`` (XHTML). Our notes are plain text, so we escape on the way out and
flatten markup on the way in (saying so when markup was present)."""

from __future__ import annotations

import html
import re

from medfusion.interop.fhir.constants import XHTML_NS

_OUTER = re.compile(r"^\s*<div\b[^>]*>(.*)</div>\s*$", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<br\s*/?>|</p>|</li>|</tr>", re.IGNORECASE)


def text_to_div(text: str) -> str:
    return f'<div xmlns="{XHTML_NS}">{html.escape(text, quote=False)}</div>'


def div_to_text(div: str) -> tuple[str, bool]:
    """The text of a narrative div, and whether markup beyond the outer div had to be flattened."""
    match = _OUTER.match(div)
    inner = match.group(1) if match else div
    had_markup = bool(_TAG.search(inner))
    if had_markup:
        inner = _TAG.sub("", _BREAK.sub("\n", inner))
    return html.unescape(inner), had_markup
