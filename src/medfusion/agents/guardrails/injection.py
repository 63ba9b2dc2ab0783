"""Prompt-injection detection on what the user types and on what retrieval brings back (OWASP Top 10 for
LLM Applications 2025, LLM01: direct and indirect injection). Patterns live in ``rules.toml``.

A flagged user message is still answered, but on the specialist path only (the model never sees an
instruction to drop its rules); a flagged passage is quarantined — kept out of the model's context and
listed in the warnings — so a poisoned document in the knowledge base cannot steer the answer.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import BaseModel

from medfusion.agents.guardrails.findings import normalise, rules

THRESHOLD = 0.6


class InjectionHit(BaseModel):
    code: str
    weight: float
    matched: str


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[str, float, re.Pattern[str]]]:
    return [
        (r["code"], float(r["weight"]), re.compile(r["pattern"], re.IGNORECASE | re.MULTILINE))
        for r in rules()["injection"]
    ]


def scan(text: str) -> list[InjectionHit]:
    text = normalise(text)
    hits = []
    for code, weight, pattern in _patterns():
        found = pattern.search(text)
        if found:
            hits.append(InjectionHit(code=code, weight=weight, matched=found.group()[:60]))
    return hits


def score(hits: list[InjectionHit]) -> float:
    """Noisy-or of the matched patterns' weights: two weak signals together count as a strong one."""
    remaining = 1.0
    for hit in hits:
        remaining *= 1 - hit.weight
    return round(1 - remaining, 3)


def is_injection(text: str) -> bool:
    return score(scan(text)) >= THRESHOLD
