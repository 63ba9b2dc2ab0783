"""What a guardrail reports: one finding per problem, with the check, a stable code, what was done about it
and the words it concerns — so the answer, the audit log and the UI can show exactly why text was removed."""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from medfusion import packaged


class Check(StrEnum):
    injection = "injection"
    grounding = "grounding"
    safety = "safety"
    pii = "pii"


class Action(StrEnum):
    flagged = "flagged"  # kept, with a warning
    removed = "removed"  # the sentence was dropped
    redacted = "redacted"  # the words were replaced by a tag
    rewritten = "rewritten"  # softened wording
    refused = "refused"  # the request was not answered
    quarantined = "quarantined"  # a retrieved passage was kept away from the model


class Finding(BaseModel):
    check: Check
    code: str
    action: Action
    detail: str  # the words concerned (no patient identifiers: PII findings name only the type)
    sentence: int | None = None  # index in the draft, when it concerns one sentence
    evidence_id: str | None = None


def normalise(text: str) -> str:
    """Full-width digits, letters and signs → ASCII (NFKC), so ５ｍｇ and 5mg compare equal."""
    return unicodedata.normalize("NFKC", text)


@lru_cache(maxsize=1)
def rules() -> dict[str, Any]:
    return packaged.toml("medfusion.agents.guardrails", "rules.toml")
