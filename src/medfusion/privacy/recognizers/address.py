"""Postal addresses down to the door: [省/自治区][市][区/县][镇/乡/街道] 路/街/大道/公路/巷 [N弄] N号
[N幢/栋/号楼][N单元][N室], rural 村…组, and whatever follows an address label (住址, 地址, 家住, 现住 …)
up to the end of the clause. Generalisation keeps the district (区/县), per GB/T 37964-2019 §A.2."""

from __future__ import annotations

import re
from collections.abc import Iterator

from medfusion.privacy.entities import EntityType, Span
from medfusion.privacy.recognizers.base import Context, Recognizer, anchored

_CJK = "\u4e00-\u9fa5"
_NUM = r"[\d一二三四五六七八九十百零〇]{1,5}"
_STREET = re.compile(
    rf"(?:[{_CJK}]{{2,6}}(?:省|自治区))?(?:[{_CJK}]{{2,6}}市)?(?:[{_CJK}]{{1,6}}(?:区|县|旗))?"
    rf"(?:[{_CJK}]{{1,8}}(?:镇|乡|街道))?"
    rf"[{_CJK}A-Za-z\d]{{1,10}}?(?:路|街|大道|公路|巷|胡同|里|弄堂)"
    rf"(?:{_NUM}弄(?:支弄)?)?{_NUM}号(?:院)?"
    rf"(?:{_NUM}(?:幢|栋|座|号楼|楼))?(?:{_NUM}单元)?(?:{_NUM}(?:室|房|户))?"
)
_VILLAGE = re.compile(
    rf"(?:[{_CJK}]{{2,6}}(?:省|自治区))?(?:[{_CJK}]{{2,6}}市)?(?:[{_CJK}]{{1,6}}(?:区|县|旗))?"
    rf"(?:[{_CJK}]{{1,8}}(?:镇|乡))?[{_CJK}]{{2,6}}村(?:{_NUM}组)?(?:{_NUM}号)?(?=[，。；;,\s]|$)"
)
# cheap anchors: a door number after a road word, or a village
_DOOR = re.compile(rf"(?:路|街|大道|公路|巷|胡同|里|弄堂)(?:{_NUM}弄(?:支弄)?)?{_NUM}号")
_VILLAGE_ANCHOR = re.compile("村")
_LABEL = re.compile(
    r"(?:家庭住址|现住址|户籍地址|居住地址|联系地址|通讯地址|住址|地址|家住|现住|居住于|住在)[\s:：]{0,2}"
    r"(?P<value>[^\s，。；;,\n]{4,40})"
)
_LEAD = (
    "家庭住址",
    "现住址",
    "户籍地址",
    "居住地址",
    "联系地址",
    "通讯地址",
    "住址",
    "地址",
    "家住",
    "现住",
    "居住于",
    "住在",
    "位于",
    "来自",
)


class AddressRecognizer(Recognizer):
    name = "address"
    entity = EntityType.ADDRESS

    def find(self, text: str, ctx: Context) -> Iterator[Span]:
        for pattern, anchor in ((_STREET, _DOOR), (_VILLAGE, _VILLAGE_ANCHOR)):
            for match in anchored(pattern, text, anchor, before=48, after=24):
                start = match.start()
                for lead in _LEAD:
                    at = text.find(lead, start, match.end())
                    if at != -1:
                        start = max(start, at + len(lead))
                while start < match.end() and text[start] in "：: ":
                    start += 1
                if match.end() - start >= 4:
                    yield self.span(text, start, match.end())
        for match in _LABEL.finditer(text):
            yield self.span(text, match.start("value"), match.end("value"), 0.8)
