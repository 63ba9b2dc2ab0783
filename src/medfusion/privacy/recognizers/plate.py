"""Licence plates (GA 36-2018): province abbreviation, issuing-authority letter, then five characters (six
for new-energy vehicles) from digits and letters without I and O; special suffixes 挂 学 警 港 澳 领."""

from __future__ import annotations

import re
from collections.abc import Iterator

from medfusion.privacy.entities import EntityType, Span
from medfusion.privacy.recognizers.base import Context, Recognizer

_PLATE = re.compile(
    r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-HJ-NP-Z]·?"
    r"(?:[A-HJ-NP-Z0-9]{5}[A-HJ-NP-Z0-9挂学警港澳领]?)(?![A-Za-z0-9])"
)


class PlateRecognizer(Recognizer):
    name = "plate"
    entity = EntityType.LICENSE_PLATE

    def find(self, text: str, ctx: Context) -> Iterator[Span]:
        for match in _PLATE.finditer(text):
            body = match.group()[2:].lstrip("·")
            if sum(c.isdigit() for c in body) >= 2:  # plates carry digits; "沪A" + word would not
                yield self.span(text, match.start(), match.end())
