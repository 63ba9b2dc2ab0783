"""居民身份证号码: 18 characters with a valid GB 11643-1999 check character and birth date, or the legacy
15-digit form (address code + YYMMDD born 19YY + 3-digit sequence, no check character) with a valid date.

An 18-digit number whose check character is wrong is *not* an ID number (specimen barcodes, settlement
serials): it is left alone unless an ID context word (身份证) names it, when it is still removed — a
mistyped ID is still an ID.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

from medfusion.privacy.entities import EntityType, Span
from medfusion.privacy.recognizers.base import (
    NOT_ALNUM_AFTER,
    NOT_ALNUM_BEFORE,
    Context,
    Recognizer,
    preceded_by,
)
from medfusion.record.id_card import is_valid_id_number

_EIGHTEEN = re.compile(
    NOT_ALNUM_BEFORE + r"[1-8]\d{5}(?:18|19|20)\d{2}[01]\d[0-3]\d\d{3}[0-9Xx]" + NOT_ALNUM_AFTER
)
_FIFTEEN = re.compile(NOT_ALNUM_BEFORE + r"[1-8]\d{5}\d{2}[01]\d[0-3]\d\d{3}" + NOT_ALNUM_AFTER)
_CONTEXT = ("身份证", "身份号", "证件号", "公民身份", "ID")


def _valid_legacy(number: str) -> bool:
    try:
        date(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]))
    except ValueError:
        return False
    return True


class IdCardRecognizer(Recognizer):
    name = "id_card"
    entity = EntityType.ID_NUMBER

    def find(self, text: str, ctx: Context) -> Iterator[Span]:
        for match in _EIGHTEEN.finditer(text):
            if is_valid_id_number(match.group()):
                yield self.span(text, match.start(), match.end())
            elif preceded_by(text, match.start(), _CONTEXT):
                yield self.span(text, match.start(), match.end(), score=0.6)
        for match in _FIFTEEN.finditer(text):
            if _valid_legacy(match.group()):
                score = 0.9 if preceded_by(text, match.start(), _CONTEXT) else 0.5
                yield self.span(text, match.start(), match.end(), score=score)
