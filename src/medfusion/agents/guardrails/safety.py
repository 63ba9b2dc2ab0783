"""Safety check: harmful requests are refused with a safe alternative, and definitive diagnostic wording
("确诊为", "肯定是") is softened so an assistive answer never reads as a final diagnosis. Doses beyond the
knowledge are handled with the claims in :mod:`grounding` (``dose_beyond_knowledge``).

A request is refused only when a rule finds the harmful act *sought* — a method, a target, an intent — not
when it merely names a risk word: "如何评估自杀风险", "对乙酰氨基酚的致死量", "怎么杀死幽门螺杆菌", "举报骗保"
pass; "怎么给人下毒不被发现", "帮我伪造诊断证明", "怎么骗保" are refused. Each rule (``rules.toml``
``[[harmful]]``) has ``patterns`` (one must match), optional ``requires`` (each must also match) and
``unless`` (the clinical, help-seeking or reporting use; any match exempts) — and a covert marker (不被发现,
查不出, 骗过 …) cancels every exemption. ``{name}`` in a pattern is a ``[harmful_terms]`` entry. The
emergency advice of a refused text comes from the red-flag lexicon (:mod:`medfusion.specialists.red_flags`),
which the guardrails run first.

Rules generalise poorly to phrasings nobody wrote a pattern for (each new batch of harmful requests was
refused 11–14 of 40 when first seen), so a learned classifier (:mod:`harm_classifier`) is the second line:
when no rule refuses, a text is refused when its probability exceeds the model's threshold — unless it is
help-seeking (我不想死, 不想活了怎么办: the supportive red-flag reply answers it) or carries one of the
reporting, recognising or clinical exemptions of ``[harm_classifier]`` without a covert marker. Every
refusal names its path: the rule (``harm_others#2``: the second ``harm_others`` rule) or ``classifier`` and
its probability.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel

from medfusion.agents.guardrails import harm_classifier
from medfusion.agents.guardrails.findings import Action, Check, Finding, normalise, rules
from medfusion.specialists import red_flags

CONFIRM_SUFFIX = "（需医生确认）"


class Refusal(BaseModel):
    code: str
    response: str
    alternative: str
    path: Literal["rule", "classifier"] = "rule"
    rule: str | None = None  # rule id: code#n, the n-th rule with that code in rules.toml
    probability: float | None = None  # the classifier's, when it refused

    @property
    def basis(self) -> str:
        """Which path refused: ``rule harm_others#2`` or ``classifier p=0.931``."""
        if self.path == "classifier":
            return f"classifier p={self.probability:.3f}"
        return f"rule {self.rule}"


@dataclass(frozen=True)
class _Rule:
    refusal: Refusal
    patterns: tuple[re.Pattern[str], ...]
    requires: tuple[re.Pattern[str], ...]
    unless: tuple[re.Pattern[str], ...]

    def refuses(self, text: str, covert: bool) -> bool:
        if not any(p.search(text) for p in self.patterns):
            return False
        if not all(p.search(text) for p in self.requires):
            return False
        return covert or not any(p.search(text) for p in self.unless)


_TERM = re.compile(r"\{([a-z_]+)\}")
# NFKC turns ，？！； into ASCII; the rules bound clauses with the Chinese marks, so map them back
_CLAUSE_MARKS = str.maketrans({",": "，", "?": "？", "!": "！", ";": "；"})


def _expand(pattern: str, terms: dict[str, str]) -> re.Pattern[str]:
    """``{person}`` → the ``[harmful_terms]`` entry; an unknown name is a load error (KeyError)."""
    return re.compile(_TERM.sub(lambda m: terms[m.group(1)], pattern), re.IGNORECASE)


@lru_cache(maxsize=1)
def _terms() -> dict[str, str]:
    terms: dict[str, str] = rules()["harmful_terms"]
    return terms


@lru_cache(maxsize=1)
def _covert() -> re.Pattern[str]:
    return _expand("{covert}", _terms())


@lru_cache(maxsize=1)
def _harmful() -> list[_Rule]:
    terms = _terms()
    allowed = {"code", "patterns", "requires", "unless", "response", "alternative"}
    compiled: list[_Rule] = []
    seen: Counter[str] = Counter()
    for r in rules()["harmful"]:
        unknown = set(r) - allowed
        if unknown:
            raise ValueError(f"harmful rule {r.get('code')}: unknown keys {sorted(unknown)}")
        seen[r["code"]] += 1
        refusal = Refusal(
            code=r["code"],
            response=r["response"],
            alternative=r["alternative"],
            rule=f"{r['code']}#{seen[r['code']]}",
        )
        compiled.append(
            _Rule(
                refusal,
                tuple(_expand(p, terms) for p in r["patterns"]),
                tuple(_expand(p, terms) for p in r.get("requires", [])),
                tuple(_expand(p, terms) for p in r.get("unless", [])),
            )
        )
    return compiled


def vetted_texts() -> tuple[str, ...]:
    """The platform's own safety wording (every refusal's response and alternative): reviewed text whose
    hotline numbers (12356, 120, 110, 12393, 12338, 12320) no answer invents — and the red-flag lexicon's
    advice, which every answer and refusal of a flagged text carries."""
    advice = red_flags.lexicon().advice.values()
    return (
        *(text for r in _harmful() for text in (r.refusal.response, r.refusal.alternative)),
        *(text for a in advice for text in (a.zh, a.en)),
    )


@lru_cache(maxsize=1)
def _definitive() -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(r["pattern"]), r["replacement"]) for r in rules()["definitive"]]


def _prepared(text: str) -> str:
    return normalise(text).translate(_CLAUSE_MARKS)


def rule_refusal(text: str) -> Refusal | None:
    """The first rule that refuses ``text`` (rules.toml order), or None."""
    text = _prepared(text)
    covert = bool(_covert().search(text))
    for rule in _harmful():
        if rule.refuses(text, covert):
            return rule.refusal
    return None


@lru_cache(maxsize=1)
def _exemptions() -> tuple[re.Pattern[str], tuple[re.Pattern[str], ...]]:
    section = rules()["harm_classifier"]
    unknown = set(section) - {"help_seeking", "exempt"}
    if unknown:
        raise ValueError(f"[harm_classifier]: unknown keys {sorted(unknown)}")
    terms = _terms()
    return _expand(section["help_seeking"], terms), tuple(_expand(p, terms) for p in section["exempt"])


def classifier_exempt(text: str) -> bool:
    """The classifier may not refuse help-seeking text (ever), nor text with a reporting, recognising or
    clinical exemption unless a covert marker cancels it. Rules keep their own exemptions."""
    text = _prepared(text)
    help_seeking, exempt = _exemptions()
    if help_seeking.search(text):
        return True
    return not _covert().search(text) and any(p.search(text) for p in exempt)


@lru_cache(maxsize=1)
def _first_rule() -> dict[tuple[str, bool], Refusal]:
    """Per code, the first rule's wording — in English too where an English rule exists."""
    first: dict[tuple[str, bool], Refusal] = {}
    for rule in _harmful():
        english = rule.refusal.response.isascii()
        first.setdefault((rule.refusal.code, english), rule.refusal)
    return first


@lru_cache(maxsize=4096)
def _classified(text: str) -> Refusal | None:
    if classifier_exempt(text):
        return None
    model = harm_classifier.shipped()
    score = model.score(text)
    if score.probability <= model.threshold:
        return None
    english = not re.search(r"[\u3400-\u9fff]", text)
    wording = _first_rule().get((score.code, english)) or _first_rule()[(score.code, False)]
    return wording.model_copy(
        update={"path": "classifier", "rule": None, "probability": round(score.probability, 4)}
    )


def harmful_request(text: str) -> Refusal | None:
    """The first rule that refuses ``text``; else the classifier's refusal (probability above the shipped
    threshold, no exemption); else None."""
    return rule_refusal(text) or _classified(text)


def soften(text: str, index: int | None = None) -> tuple[str, list[Finding]]:
    """Definitive diagnosis wording → hedged wording plus "(需医生确认)"."""
    findings: list[Finding] = []
    for pattern, replacement in _definitive():
        found = pattern.search(text)
        if found:
            text = pattern.sub(replacement, text)
            findings.append(
                Finding(
                    check=Check.safety,
                    code="definitive_diagnosis",
                    action=Action.rewritten,
                    detail=found.group(),
                    sentence=index,
                )
            )
    if findings and CONFIRM_SUFFIX not in text:
        text = re.sub(r"([。！!.]?)$", lambda m: CONFIRM_SUFFIX + m.group(1), text, count=1)
    return text, findings
