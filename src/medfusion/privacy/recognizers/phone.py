"""Chinese mobile and landline numbers in the ways people write them: ``13812345678``, ``138-1234-5678``,
``138 1234 5678``, ``+86 138…``, ``86138…``, ``(021)62345678``, ``（021）6234 5678``, ``021-62345678``,
``+86-21-62345678``. Mobile prefixes 13x–19x (MIIT numbering plan). A mobile-shaped number directly
followed by a laboratory unit (``13408682594 IU/mL``) or preceded by a lab term is a lab value, not a phone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from medfusion.privacy.entities import EntityType, Span
from medfusion.privacy.recognizers.base import (
    NOT_DIGIT_AFTER,
    NOT_DIGIT_BEFORE,
    Context,
    Recognizer,
    followed_by,
    preceded_by,
)

_SEP = r"[-\s ]?"
_MOBILE = re.compile(
    NOT_DIGIT_BEFORE
    + r"(?:(?:\+|＋)?86"
    + _SEP
    + r")?1[3-9]\d"
    + _SEP
    + r"\d{4}"
    + _SEP
    + r"\d{4}"
    + NOT_DIGIT_AFTER
)
_LANDLINE = re.compile(
    NOT_DIGIT_BEFORE
    + r"(?:"
    + r"(?:\+|＋)86[-\s]?(?:\(0?\d{2,3}\)|0?\d{2,3})[-\s]?\d{3,4}[-\s]?\d{4}"  # +86-21-62345678
    + r"|[（(]0\d{2,3}[）)]\s?\d{3,4}[-\s]?\d{4}"  # (021)62345678, （021）6234 5678
    + r"|0\d{2,3}[-\s]\d{3,4}[-\s]?\d{4}"  # 021-62345678, 021 6234 5678
    + r")"
    + r"(?:[-转]\d{1,6})?"
    + NOT_DIGIT_AFTER
)
_BARE_WITH_CONTEXT = re.compile(NOT_DIGIT_BEFORE + r"(?:0\d{9,11}|\d{7,8})" + NOT_DIGIT_AFTER)
_PHONE_CONTEXT = ("电话", "手机", "联系方式", "联系电话", "Tel", "TEL", "tel", "座机", "致电", "号码")
_LAB_UNITS = (
    "IU",
    "iu",
    "copies",
    "拷贝",
    "U/",
    "mmol",
    "μmol",
    "umol",
    "mg",
    "g/",
    "/mL",
    "/ml",
    "×",
    "*10",
    "ng",
    "pg",
    "cells",
    "个/",
    "CFU",
    "cfu",
)
_LAB_TERMS = ("DNA", "RNA", "载量", "计数", "浓度", "滴度", "定量")


class PhoneRecognizer(Recognizer):
    name = "phone"
    entity = EntityType.PHONE

    def find(self, text: str, ctx: Context) -> Iterator[Span]:
        for match in _MOBILE.finditer(text):
            if followed_by(text, match.end(), _LAB_UNITS) or preceded_by(text, match.start(), _LAB_TERMS, 10):
                continue
            yield self.span(text, match.start(), match.end())
        for match in _LANDLINE.finditer(text):
            yield self.span(text, match.start(), match.end(), score=0.95)
        for match in _BARE_WITH_CONTEXT.finditer(text):
            if preceded_by(text, match.start(), _PHONE_CONTEXT, 6):
                yield self.span(text, match.start(), match.end(), score=0.7)
