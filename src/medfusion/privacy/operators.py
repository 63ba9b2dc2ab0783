"""Operators: what replaces each detected identifier.

- ``tag``: a type tag (``[姓名]``, ``[身份证号]`` …) — the default; readable, nothing recoverable.
- ``mask``: ``*`` for every character — keeps lengths and offsets.
- ``pseudo``: a consistent keyed surrogate (see :mod:`medfusion.privacy.pseudonyms`); dates shifted by the
  patient's offset.
- ``generalize``: keep what analysis needs at lower resolution — dates → year, ages over 89 → 90岁以上,
  addresses → district (GB/T 37964-2019 §5.3.3 generalisation); other identifiers are tagged.
"""

from __future__ import annotations

import re
from enum import StrEnum

from medfusion.privacy.date_shift import shift_date, year_only
from medfusion.privacy.entities import TAGS, EntityType, Span
from medfusion.privacy.pseudonyms import Pseudonymizer


class Mode(StrEnum):
    tag = "tag"
    mask = "mask"
    pseudo = "pseudo"
    generalize = "generalize"


def age_band(age: int, width: int = 5) -> str:
    """``67`` → ``65-69岁``; 90 and over collapse into one band (HIPAA Safe Harbor)."""
    if age >= 90:
        return "90岁以上"
    low = age - age % width
    return f"{low}-{low + width - 1}岁"


def _district(address: str) -> str | None:
    found = re.match(r"^(.*?(?:区|县|旗))", address)
    return found.group(1) if found else None


def replacement(
    span: Span, mode: Mode, pseudonymizer: Pseudonymizer | None = None, date_offset: int = 0
) -> str:
    if mode is Mode.mask:
        return "*" * len(span.text)
    if mode is Mode.generalize:
        generalized = None
        if span.type is EntityType.DATE:
            generalized = year_only(span.text)
        elif span.type is EntityType.AGE:
            generalized = "90岁以上"
        elif span.type is EntityType.ADDRESS:
            generalized = _district(span.text)
        return generalized or TAGS[span.type]
    if mode is Mode.pseudo:
        if pseudonymizer is None:
            raise ValueError("pseudo mode needs a Pseudonymizer (a key)")
        if span.type is EntityType.DATE:
            return shift_date(span.text, date_offset) or TAGS[span.type]
        return pseudonymizer.surrogate(span)
    return TAGS[span.type]


def apply(
    text: str, spans: list[Span], mode: Mode, pseudonymizer: Pseudonymizer | None = None, date_offset: int = 0
) -> tuple[str, list[tuple[Span, str]]]:
    """The rewritten text, and each span with what replaced it (for reports and reversible mappings)."""
    out: list[str] = []
    done: list[tuple[Span, str]] = []
    position = 0
    for span in sorted(spans):
        if span.start < position:
            continue
        new = replacement(span, mode, pseudonymizer, date_offset)
        out.append(text[position : span.start])
        out.append(new)
        done.append((span, new))
        position = span.end
    out.append(text[position:])
    return "".join(out), done
