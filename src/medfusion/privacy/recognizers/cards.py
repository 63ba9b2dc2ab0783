"""Bank cards: 16–19 digits (optionally in groups of four) with a passing Luhn check (ISO/IEC 7812-1) and a
known issuer prefix — 62 (China UnionPay), 4 (Visa), 51–55 / 2221–2720 (Mastercard), 34/37 (Amex),
35 (JCB) — or a card context word."""

from __future__ import annotations

import re
from collections.abc import Iterator

from medfusion.privacy.entities import EntityType, Span
from medfusion.privacy.recognizers.base import (
    NOT_DIGIT_AFTER,
    NOT_DIGIT_BEFORE,
    Context,
    Recognizer,
    preceded_by,
)

_CARD = re.compile(NOT_DIGIT_BEFORE + r"(?:(?:\d{4}[ -]){3,4}\d{1,7}|\d{16,19})" + NOT_DIGIT_AFTER)
_PREFIXES = (
    "62",
    "4",
    "51",
    "52",
    "53",
    "54",
    "55",
    "34",
    "37",
    "35",
    *tuple(str(p) for p in range(2221, 2721)),
)
_CONTEXT = ("银行卡", "卡号", "账号", "信用卡", "储蓄卡", "借记卡")


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


class BankCardRecognizer(Recognizer):
    name = "bank_card"
    entity = EntityType.BANK_CARD

    def find(self, text: str, ctx: Context) -> Iterator[Span]:
        for match in _CARD.finditer(text):
            digits = re.sub(r"[ -]", "", match.group())
            if not 16 <= len(digits) <= 19 or not luhn_ok(digits):
                continue
            if digits.startswith(_PREFIXES) or preceded_by(text, match.start(), _CONTEXT):
                yield self.span(text, match.start(), match.end())
