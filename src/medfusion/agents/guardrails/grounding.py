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
from medfusion.graph.store import GraphStore

_CITATION = re.compile(r"\[(?:[KGP]\d+(?:\s*[,，]\s*)?)+\]")
_NUMBER = re.compile(
    r"(?<![A-Za-z\d.])(\d+(?:\.\d+)?)\s*"
    r"(mg/kg|mg/d|mg|μg|ug|mcg|g/L|g|kg|ml|L|mmol/L|μmol/L|umol/L|mmHg|IU|U|万单位|单位|%|片|粒|支|袋|滴"
    r"|次|岁|天|日|周|月|年|小时|h|分钟|min|℃|cm|mm|级|期|型)?"
)
_UNIT_ALIASES = {
    "ug": "μg",
    "mcg": "μg",
    "umol/L": "μmol/L",
    "日": "天",
    "h": "小时",
    "min": "分钟",
    "ml": "mL",
}
_DRUG_STEM = re.compile(
    r"[\u4e00-\u9fff]{1,6}?(沙坦|地平|普利|洛尔|他汀|西林|头孢[\u4e00-\u9fff]{1,4}|霉素|沙星|替尼|单抗|格列[\u4e00-\u9fff]{1,3}"
    r"|西泮|唑仑|拉唑|替丁|昔布|洛芬|米松|尼松|肝素|噻嗪|沙班|格雷|匹林)"
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


def _value(raw: str) -> str:
    number = float(raw)
    return str(int(number)) if number.is_integer() else f"{number:g}"


def _numbers(text: str) -> list[tuple[str, str, str]]:
    """(as written, value, unit) for each number outside citation markers."""
    text = _CITATION.sub(" ", normalise(text))
    found = []
    for m in _NUMBER.finditer(text):
        unit = m.group(2) or ""
        found.append((m.group().strip(), _value(m.group(1)), _UNIT_ALIASES.get(unit, unit)))
    return found


class Grounder:
    def __init__(self, graph: GraphStore | None) -> None:
        self.graph = graph

    def support(self, texts: Sequence[str]) -> Support:
        support = Support(text=normalise("\n".join(texts)))
        for text in texts:
            for _, value, unit in _numbers(text):
                support.numbers.add(f"{value}|{unit}")
                support.numbers.add(f"{value}|")
            if self.graph is not None:
                support.entities.update(m.entity.id for m in self.graph.mentions(normalise(text)))
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
            mentions = self.graph.mentions(sentence)
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
                # the match may start early (可用氨氯地平): report the stem with two characters before it
                stem, words = found.group(1), found.group()
                claims.append(Claim(kind="drug", text=words[-(len(stem) + 2) :], key=f"words:{words}|{stem}"))
        return claims

    @staticmethod
    def supported(claim: Claim, support: Support) -> bool:
        if claim.kind in {"number", "dose"}:
            return claim.key in support.numbers
        if claim.key.startswith("words:"):
            # supported when the stem with at least one character before it is in the support (氯地平)
            words, stem = claim.key.removeprefix("words:").rsplit("|", 1)
            return any(words[i:] in support.text for i in range(len(words) - len(stem)))
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
