"""Person names: Chinese names are a surname (单姓 or 复姓) and one or two given characters, with no
spaces — so a name is only taken where something says it is one:
- names known from the structured record (the patient, contacts), found again wherever they occur;
- a cue before it (患者, 姓名, 家属, 其子, 其女, 配偶, 联系人, 陪同, 签名 …) or after it (医生, 主任, 护士;
  ``，男，63岁``); honorifics (张先生, 李女士);
- never where a clinical term begins (高血压, 白细胞, 黄芩, 陈皮 — the protected vocabulary), and never
  through characters that do not occur in given names (于, 因, 在, 年, 月 …).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from medfusion.privacy.entities import EntityType, Span
from medfusion.privacy.recognizers.base import Context, Recognizer, anchored
from medfusion.record.surnames import COMPOUND_SURNAMES

SINGLE_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任卢姚"
    "沈钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾龚邵万覃武钱戴严莫孔向常汤"
    "康易乔赖文施洪辛柯庄葛裴俞倪齐兰童祝鲁殷申岳涂耿牛关焦甘左樊伍舒房聂祁詹尚车栾单滕吉蒙苗卜管柏"
    "包谷宁邢安翁纪卓华蓝邬凌骆柴连晏巩阮桑计蔺荣冉麦"
)
# Characters that follow a surname in running clinical text but (almost) never in a given name.
_STOP = (
    "于在因为以和与及的了是有无不未否诉述称说代陪签要请昨今床上下左右侧自行感伴出现来就诊病史入院门电手住身"
    "急术后前年日周时分秒男女岁性患者，、。；：:,.;（）() \n血压糖尿心肺肝肾脑胃肠痛热咳喘"
)
STOP_CHARACTERS = frozenset(_STOP)
_SURNAME = "(?:" + "|".join(sorted(COMPOUND_SURNAMES, key=len, reverse=True)) + f"|[{SINGLE_SURNAMES}])"
_GIVEN = f"(?:(?![{re.escape(_STOP)}])[\u4e00-\u9fa5]){{1,2}}"
_NAME = f"(?P<name>{_SURNAME}{_GIVEN})"
# Role and label cues: what follows is a name, even if it is also a word (联系人：连翘).
_STRONG = (
    "患者姓名|姓名|家属签字|家属|其子|其女|其妻|其夫|其孙女|其孙|其父|其母|之子|之女|儿子|女儿|丈夫|妻子|配偶|"
    "联系人|紧急联系人|陪同人|监护人|委托人|代理人|签名|签字|主治医师|主治医生|记录人|报告人|审核人|操作者"
)
# "患者" is followed by names and by clinical words alike: check those against the protected vocabulary.
_WEAK = "患者|病人|病员"
_CUE_STRONG = re.compile(
    f"(?:(?:{_STRONG})[\\s:：]{{0,2}}|(?:经治|主管|值班|责任|管床)?(?:医生|医师|护士)[:：]\\s?){_NAME}"
)
_CUE_WEAK = re.compile(f"(?:{_WEAK})[\\s:：]{{0,2}}{_NAME}")
_CUE_AFTER = re.compile(f"{_NAME}(?=[\\s，,（(]*(?:男|女)[\\s，,、）)]*\\d{{1,3}}岁)")
_TITLE_AFTER = re.compile(
    f"(?P<name>{_SURNAME}(?:{_GIVEN})?)(?=医生|医师|主任|护士长|护士|大夫|教授|老师|药师)"
)
# Patterns that begin with a surname are run only near their cue (岁, a title, an honorific).
_AGE_ANCHOR = re.compile(r"(?:男|女)[\s，,、）)]*\d{1,3}岁")
_TITLE_ANCHOR = re.compile("医生|医师|主任|护士|大夫|教授|老师|药师")
_HONORIFIC_ANCHOR = re.compile("先生|女士|小姐|阿姨|大爷|师傅|老人")
_BEFORE_BARE_SURNAME = "请由经向找问与和及、联系"
# 刘德华先生, 赵先生: a full name or a bare surname before an honorific
_HONORIFIC = re.compile(f"(?P<name>{_SURNAME}(?:{_GIVEN})?)(?=先生|女士|小姐|阿姨|大爷|师傅|老人)")


class NameRecognizer(Recognizer):
    name = "person"
    entity = EntityType.PERSON

    def _protected_at(self, text: str, start: int, end: int, ctx: Context) -> bool:
        """A clinical term starts here and covers the whole candidate (黄疸, 陈皮 — not 陈皮皮)."""
        return any(
            len(term) >= end - start and text.startswith(term, start)
            for term in ctx.protected_prefixes.get(text[start], ())
        )

    def find(self, text: str, ctx: Context) -> Iterator[Span]:
        for known in ctx.known_names:
            if len(known) < 2:
                continue
            start = text.find(known)
            while start != -1:
                yield self.span(text, start, start + len(known), 1.0)
                start = text.find(known, start + len(known))
        # (pattern, score, check the vocabulary?) — demographics after a name (，女，52岁) are decisive
        rules = (
            (_CUE_STRONG, None, 0.9, False),
            (_CUE_AFTER, _AGE_ANCHOR, 0.85, False),
            (_CUE_WEAK, None, 0.85, True),
            (_TITLE_AFTER, _TITLE_ANCHOR, 0.75, True),
            (_HONORIFIC, _HONORIFIC_ANCHOR, 0.7, True),
        )
        for pattern, anchor, score, check in rules:
            matches = pattern.finditer(text) if anchor is None else anchored(pattern, text, anchor, 8, 14)
            for match in matches:
                start, end = match.start("name"), match.end("name")
                if check and self._protected_at(text, start, end, ctx):
                    continue
                if (
                    end - start == 1
                    and start > 0
                    and "\u4e00" <= text[start - 1] <= "\u9fa5"
                    and text[start - 1] not in _BEFORE_BARE_SURNAME
                ):
                    continue  # 主管医生, 上级医生: a lone "surname" inside a word
                yield self.span(text, start, end, score)
