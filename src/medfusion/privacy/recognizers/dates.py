"""Dates in the forms Chinese records use — ``2024-03-01``, ``2024/3/1``, ``2024.03.01``,
``2024年3月1日``, ``2024年3月``, ``3月1日``, ``20240301``, ``01/03/2024``, ``二〇二四年三月一日`` — with an
optional time of day.
HIPAA Safe Harbor removes every date element except the year, so a bare year stays. Impossible dates
(``2024-02-30``) are not dates. Ages above 89 (``92岁``, ``年龄：95``) are identifiers too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

from medfusion.privacy.entities import EntityType, Span
from medfusion.privacy.recognizers.base import Context, Recognizer

_TIME = r"(?:[ T]?\d{1,2}[:：]\d{2}(?:[:：]\d{2})?|\s?\d{1,2}时(?:\d{1,2}分)?)?"
_Y = r"(?P<y>(?:18|19|20)\d{2})"
_M = r"(?P<m>0?[1-9]|1[0-2])"
_D = r"(?P<d>0?[1-9]|[12]\d|3[01])"
DATE_PATTERNS = [
    re.compile(rf"(?<![\d.])(?:{_Y}[-/.]{_M}[-/.]{_D}){_TIME}(?![\d])"),
    re.compile(rf"(?<![\d])(?:{_Y}\s?年\s?{_M}\s?月(?:\s?{_D}\s?[日号])?){_TIME}"),
    re.compile(rf"(?<![\d年])(?:{_M}\s?月\s?{_D}\s?[日号]){_TIME}"),
    re.compile(r"(?<![\d])(?P<y>(?:19|20)\d{2})(?P<m>0[1-9]|1[0-2])(?P<d>0[1-9]|[12]\d|3[01])(?![\d])"),
    re.compile(rf"(?<![\d/.])(?:{_D}[/.]{_M}[/.]{_Y})(?![\d])"),
]
_CN_DIGITS = "〇零一二三四五六七八九"
_CN_DATE = re.compile(
    r"[〇零一二三四五六七八九]{4}年[一二三四五六七八九十]{1,2}月(?:[一二三四五六七八九十]{1,3}[日号])?"
)
_AGE = re.compile(r"(?<![\d.])(?P<age>\d{2,3})\s?(?:周岁|岁)|年龄[\s:：]{0,2}(?P<age2>\d{2,3})(?![\d])")


def _valid(year: str | None, month: str, day: str | None) -> bool:
    try:
        date(int(year) if year else 2000, int(month), int(day) if day else 1)
    except ValueError:
        return False
    return True


class DateRecognizer(Recognizer):
    name = "date"
    entity = EntityType.DATE

    def find(self, text: str, ctx: Context) -> Iterator[Span]:
        for index, pattern in enumerate(DATE_PATTERNS):
            for match in pattern.finditer(text):
                groups = match.groupdict()
                if not _valid(groups.get("y"), groups["m"], groups.get("d")):
                    continue
                yield self.span(text, match.start(), match.end(), 0.8 if index == 3 else 1.0)
        for match in _CN_DATE.finditer(text):
            yield self.span(text, match.start(), match.end())


class AgeRecognizer(Recognizer):
    name = "age"
    entity = EntityType.AGE

    def find(self, text: str, ctx: Context) -> Iterator[Span]:
        for match in _AGE.finditer(text):
            group = "age" if match.group("age") else "age2"
            if 89 < int(match.group(group)) < 130:
                end = match.end() if group == "age" else match.end(group)
                yield self.span(text, match.start(group), end)
