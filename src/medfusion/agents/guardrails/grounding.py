"""Grounding check: every number, drug, dose and diagnosis in a generated sentence must be supported by the
input (question, patient context) or by the evidence the sentence cites. Unsupported ones are removed with
their sentence (strict, the default for clinical answers) or flagged (lenient).

Claims are found the way a reviewer reads: numbers with their units (after NFKC, so ５ｍｇ = 5 mg),
drug and disease names through the knowledge graph's lexicon (names, codes' names and synonyms, so 扑热息痛
is supported by 对乙酰氨基酚), and drug names the graph does not know by their INN-style stems (…沙坦,
…地平, …西林 …). Support for a number is the same value with the same unit (or without a unit when the
claim has none); for an entity, the same preferred entity or the same words. A claim supported only by
evidence the sentence does not cite is kept and flagged ``miscited``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel

from medfusion.agents.guardrails.findings import Action, Check, Finding, normalise
from medfusion.graph import Graph

_CITATION = re.compile(r"\[(?:[KGPRS]\d+(?:\s*[,，]\s*)?)+\]")
_NUMBER = re.compile(
    # a whole number that is not a locant of a chemical name (5-羟色胺, 6-巯基嘌呤); 6-12周 is a range
    r"(?<![A-Za-z\d.])(\d+(?:\.\d+)?)(?![\d.])(?!\s*-\s*[^\d\s~])\s*"
    r"(mg/kg|mg/d|mg|μg|ug|mcg|g/L|g|kg|ml|mL|L|mmol/L|μmol/L|umol/L|mmHg|IU|U|毫克|微克|克|千克|毫升|升"
    r"|毫米汞柱|国际单位|万单位|单位|%|片|粒|支|袋|滴|次|岁|天|日|周|月|年|小时|h|分钟|min|℃|摄氏度|cm|mm|级|期|型)?"
)
_UNIT_ALIASES = {
    "毫克": "mg",
    "微克": "μg",
    "克": "g",
    "千克": "kg",
    "毫升": "mL",
    "升": "L",
    "毫米汞柱": "mmHg",
    "国际单位": "IU",
    "摄氏度": "℃",
    "ug": "μg",
    "mcg": "μg",
    "umol/L": "μmol/L",
    "日": "天",
    "h": "小时",
    "min": "分钟",
    "ml": "mL",
}
# a drug name's own characters: function words (用、服、与、和 …) end the name when read backwards
_NAME_CHAR = r"[^\W\d_A-Za-z用服与和及予联或可的以选换改停请需应再并如若等每次日、，。；]"
_DRUG_STEM = re.compile(
    rf"{_NAME_CHAR}{{1,6}}?(沙坦|地平|普利|洛尔|他汀|西林|霉素|沙星|替尼|单抗"
    r"|西泮|唑仑|拉唑|替丁|昔布|洛芬|米松|尼松|肝素|噻嗪|沙班|格雷|匹林)"
    rf"|((?:头孢|格列){_NAME_CHAR}{{1,4}})"  # cephalosporins and sulfonylureas carry their stem first
)
_DRUG_TYPES = {"drug", "drug_class"}


class Claim(BaseModel):
    kind: str  # number | dose | drug | diagnosis
    text: str  # as written
    key: str  # what support is matched on: "5|mg", or a preferred entity id


@dataclass
class Support:
    """What a body of text can vouch for."""

    numbers: set[str] = field(default_factory=set)  # "value|unit" and "value|"
    entities: set[str] = field(default_factory=set)
    text: str = ""


_CN_DIGIT = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
_CN_NUMBER = re.compile(
    r"(?<!第)([零〇一二两三四五六七八九十百千]+(?:点[零〇一二三四五六七八九]+)?)"
    r"(?=\s*(?:mg|g|ml|mL|毫克|微克|克|毫升|片|粒|支|袋|滴|次(?!性)|天|日|周|个月|月|年|小时|分钟|岁|单位|国际单位))"
)


def _cn_value(words: str) -> str | None:
    """一百二十 → 120, 两 → 2, 零点五 → 0.5; None for what is not a well-formed numeral."""
    whole, _, frac = words.partition("点")
    total, digit = 0, None
    for ch in whole:
        if ch in _CN_DIGIT:
            if digit is not None:
                return None  # 二三: not a numeral
            digit = _CN_DIGIT[ch]
        else:
            total += (1 if digit is None else digit) * _CN_UNIT[ch]
            digit = None
    total += digit or 0
    if frac:
        return f"{total}.{''.join(str(_CN_DIGIT[c]) for c in frac)}"
    return str(total)


def _arabic(text: str) -> str:
    """Chinese numerals before a unit become digits (每次五百毫克 → 每次500毫克), so they are claims too."""

    def swap(m: re.Match[str]) -> str:
        value = _cn_value(m.group(1))
        return value if value is not None else m.group(1)

    return _CN_NUMBER.sub(swap, text)


def _value(raw: str) -> str:
    number = float(raw)
    return str(int(number)) if number.is_integer() else f"{number:g}"


def _numbers(text: str) -> list[tuple[str, str, str]]:
    """(as written, value, unit) for each number outside citation markers."""
    text = _arabic(_CITATION.sub(" ", normalise(text)))
    found = []
    for m in _NUMBER.finditer(text):
        unit = m.group(2) or ""
        found.append((m.group().strip(), _value(m.group(1)), _UNIT_ALIASES.get(unit, unit)))
    return found


class Grounder:
    def __init__(self, graph: Graph | None) -> None:
        self.graph = graph

    def support(self, texts: Sequence[str]) -> Support:
        support = Support(text=normalise("\n".join(texts)))
        for text in texts:
            for _, value, unit in _numbers(text):
                support.numbers.add(f"{value}|{unit}")
                support.numbers.add(f"{value}|")
            if self.graph is not None:
                support.entities.update(m.entity.id for m in self.graph.lexicon.mentions(normalise(text)))
        return support

    def claims(self, sentence: str) -> list[Claim]:
        sentence = normalise(_CITATION.sub(" ", sentence))
        claims: list[Claim] = []
        dose_units = {
            "mg/kg",
            "mg/d",
            "mg",
            "μg",
            "g",
            "mL",
            "IU",
            "U",
            "万单位",
            "单位",
            "片",
            "粒",
            "支",
            "袋",
            "滴",
        }
        for written, value, unit in _numbers(sentence):
            kind = "dose" if unit in dose_units else "number"
            claims.append(Claim(kind=kind, text=written, key=f"{value}|{unit}"))
        covered: list[tuple[int, int]] = []
        if self.graph is not None:
            mentions = self.graph.lexicon.mentions(sentence)
            as_symptom = {m.surface for m in mentions if m.entity.type == "symptom"}
            for m in mentions:
                span = (m.start, m.start + len(m.surface))
                if m.entity.type in _DRUG_TYPES:
                    claims.append(Claim(kind="drug", text=m.surface, key=m.entity.id))
                    covered.append(span)
                elif m.entity.type == "disease" and m.surface not in as_symptom:
                    claims.append(Claim(kind="diagnosis", text=m.surface, key=m.entity.id))
                    covered.append(span)
        for found in _DRUG_STEM.finditer(sentence):
            if not any(s <= found.start() < e or found.start() <= s < found.end() for s, e in covered):
                stem, words = found.group(1) or found.group(2), found.group()
                claims.append(Claim(kind="drug", text=words, key=f"words:{words}|{stem}"))
        return claims

    @staticmethod
    def supported(claim: Claim, support: Support) -> bool:
        if claim.kind in {"number", "dose"}:
            return claim.key in support.numbers
        if claim.key.startswith("words:"):
            # the name's last stem+2 characters (匹伐他汀 is not 阿托伐他汀), or all of a short name (缬沙坦)
            words, stem = claim.key.removeprefix("words:").rsplit("|", 1)
            return words[-(len(stem) + 2) :] in support.text
        return claim.key in support.entities or claim.text in support.text


class GroundingResult(BaseModel):
    kept: list[int]
    findings: list[Finding]
    claims_checked: int


def check_grounding(
    grounder: Grounder,
    sentences: Sequence[tuple[str, Sequence[str]]],
    given: Sequence[str],
    evidence: dict[str, str],
    strict: bool = True,
) -> GroundingResult:
    """``sentences`` are (text, cited evidence ids); ``given`` the question and patient context; ``evidence``
    id → text. Returns the indices of the sentences that stand and one finding per unsupported claim."""
    base = grounder.support(given)
    everything = grounder.support([*given, *evidence.values()])
    kept: list[int] = []
    findings: list[Finding] = []
    checked = 0
    cache: dict[tuple[str, ...], Support] = {}
    for index, (text, cited) in enumerate(sentences):
        key = tuple(sorted(cited))
        if key not in cache:
            cache[key] = grounder.support([*given, *(evidence[c] for c in cited if c in evidence)])
        own = cache[key]
        unsupported = False
        for claim in grounder.claims(text):
            checked += 1
            if grounder.supported(claim, own) or grounder.supported(claim, base):
                continue
            if grounder.supported(claim, everything):
                findings.append(
                    Finding(
                        check=Check.grounding,
                        code="miscited",
                        action=Action.flagged,
                        detail=f"{claim.kind}: {claim.text}",
                        sentence=index,
                    )
                )
                continue
            # a dose the knowledge does not state is a safety matter: removed even in lenient mode
            dose = claim.kind == "dose"
            removing = strict or dose
            unsupported = unsupported or removing
            findings.append(
                Finding(
                    check=Check.safety if dose else Check.grounding,
                    code="dose_beyond_knowledge" if dose else f"unsupported_{claim.kind}",
                    action=Action.removed if removing else Action.flagged,
                    detail=f"{claim.kind}: {claim.text}",
                    sentence=index,
                )
            )
        if not unsupported:
            kept.append(index)
    return GroundingResult(kept=kept, findings=findings, claims_checked=checked)
