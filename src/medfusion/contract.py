"""The one output contract every clinical output carries (ARCHITECTURE.md, "One contract for every clinical
output"): evidence, a confidence and how it was computed, provenance (which path produced it, engines,
model, prompt versions), a status that stays assistive until a clinician acts, and warnings."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

Path = Literal["specialist", "llm", "fused"]


class Status(StrEnum):
    needs_clinician_confirmation = "needs_clinician_confirmation"  # a draft until a clinician acts
    confirmed = "confirmed"
    edited = "edited"
    rejected = "rejected"
    refused = "refused"  # the request was not answered (harmful); nothing to confirm


class Provenance(BaseModel):
    path: Path
    engine: str  # the specialist engine(s)
    model: str | None = None  # the general model that drafted, when one did
    prompt: str | None = None  # prompt id@version
    fallback: str | None = None  # why the general model did not answer (no_model, timeout …)
    versions: dict[str, str] = Field(default_factory=dict)


class OutputWarning(BaseModel):
    code: str  # stable: red_flag, low_confidence, prompt_injection, llm_unavailable, unsupported_drug …
    message: str
    severity: Literal["info", "caution", "high"] = "caution"


class Confidence(BaseModel):
    value: float = Field(ge=0, le=1)
    method: str  # how it was computed, in a sentence
