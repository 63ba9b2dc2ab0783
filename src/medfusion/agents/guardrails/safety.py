"""Safety check: harmful requests are refused with a safe alternative (self-harm → the national
psychological assistance hotline 12356 and 120; harm to others → 110/120; illicit drugs and unsupervised
abortion → see a doctor), and definitive diagnostic wording ("确诊为", "肯定是") is softened so an
assistive answer never reads as a final diagnosis. Doses beyond the knowledge are handled with the claims in
:mod:`grounding` (``dose_beyond_knowledge``). Patterns and wording live in ``rules.toml``.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import BaseModel

from medfusion.agents.guardrails.findings import Action, Check, Finding, normalise, rules

CONFIRM_SUFFIX = "（需医生确认）"


class Refusal(BaseModel):
    code: str
    response: str
    alternative: str


@lru_cache(maxsize=1)
def _harmful() -> list[tuple[re.Pattern[str], Refusal]]:
    return [
        (
            re.compile(r["pattern"], re.IGNORECASE),
            Refusal(code=r["code"], response=r["response"], alternative=r["alternative"]),
        )
        for r in rules()["harmful"]
    ]


def vetted_texts() -> tuple[str, ...]:
    """The platform's own safety wording (every refusal's response and alternative): reviewed text whose
    hotline numbers (12356, 120, 110) no answer invents."""
    return tuple(text for _, r in _harmful() for text in (r.response, r.alternative))


@lru_cache(maxsize=1)
def _definitive() -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(r["pattern"]), r["replacement"]) for r in rules()["definitive"]]


def harmful_request(text: str) -> Refusal | None:
    text = normalise(text)
    for pattern, refusal in _harmful():
        if pattern.search(text):
            return refusal
    return None


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
