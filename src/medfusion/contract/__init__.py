"""The one output contract every clinical output carries (ARCHITECTURE.md, "One contract for every clinical
output"): evidence, a confidence and how it was computed, provenance (which path produced it, engines,
model, prompt versions, and the typed reason when the model did not answer), a status that stays
assistive until a clinician acts, and warnings drawn from one code list whose wording lives in one data
file (``warnings.toml``, zh + en).

Every app's output subclasses :class:`ClinicalOutput`; a draft a clinician reads as text subclasses
:class:`DraftOutput` (adds the rendered ``answer`` and its cited ``sentences``). This module sits below every
layer: it imports nothing of ours.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from functools import cache
from pathlib import Path as FilePath
from typing import Any, Literal

from pydantic import BaseModel, Field

Path = Literal["specialist", "llm", "fused"]
Severity = Literal["info", "caution", "high"]


class Status(StrEnum):
    needs_clinician_confirmation = "needs_clinician_confirmation"  # a draft until a clinician acts
    confirmed = "confirmed"
    edited = "edited"
    rejected = "rejected"
    refused = "refused"  # the request was not answered (harmful); nothing to confirm


class Fallback(StrEnum):
    """Why the general model's answer is not the one shown — one code list for provenance, traces and logs.

    The first group mirrors the general-model client's own reasons (``llm.Reason``, kept equal by a test);
    the rest are the fusion pipeline's."""

    no_model = "no_model"
    unreachable = "unreachable"
    timeout = "timeout"
    bad_key = "bad_key"
    rate_limited = "rate_limited"
    server_error = "server_error"
    bad_request = "bad_request"
    bad_response = "bad_response"
    circuit_open = "circuit_open"
    invalid_output = "invalid_output"
    budget_exhausted = "budget_exhausted"
    # the guardrails removed every drafted sentence, so the specialist answer stands (value kept from v1)
    guardrail_removed_all = "guardrails_rejected"
    prompt_injection = "prompt_injection"  # the request tried to change the rules: model not consulted
    step_budget = "step_budget"  # the agent ran out of tool-calling steps
    token_budget = "token_budget"  # the agent ran out of its token budget
    refused = "refused"  # a harmful request: nothing was drafted


class WarningCode(StrEnum):
    """Stable warning codes; their wording and default severity are in ``warnings.toml``."""

    red_flag = "red_flag"
    harmful_request = "harmful_request"
    drug_conflict = "drug_conflict"
    contraindication = "contraindication"
    critical_value = "critical_value"
    low_confidence = "low_confidence"
    no_evidence = "no_evidence"
    missing_data = "missing_data"
    prompt_injection = "prompt_injection"
    injected_passage = "injected_passage"
    unsupported_claims_removed = "unsupported_claims_removed"
    llm_unavailable = "llm_unavailable"


@cache
def _catalogue() -> dict[str, dict[str, str]]:
    raw = tomllib.loads(FilePath(__file__).with_name("warnings.toml").read_text(encoding="utf-8"))
    entries: dict[str, dict[str, str]] = raw["warning"]
    return entries


def warning_text(code: WarningCode, lang: Literal["zh", "en"] = "zh", **values: object) -> str:
    """The catalogue's wording for ``code``, its ``{placeholders}`` filled from ``values``."""
    return _catalogue()[code.value][lang].format(**values)


class Citation(BaseModel):
    """Exactly where a quoted passage stands in its document."""

    document_id: str
    source: str
    title: str
    section: str
    start: int
    end: int

    def label(self) -> str:
        return f"{self.title} § {self.section} [{self.start}:{self.end}]" if self.section else self.title


class Evidence(BaseModel):
    """One item an output rests on: a retrieved passage, a graph fact, a rule, a score with its inputs."""

    id: str  # K1, K2 … passages; G1, G2 … graph facts
    kind: str  # passage | graph | rule | score
    text: str
    source: str
    citation: Citation | None = None  # passages: document, section, exact character span
    authority: str | None = None
    review_status: str | None = None
    chunk_id: str | None = None  # passages: the stored chunk (feedback re-weights it)


class AnswerSentence(BaseModel):
    text: str
    # evidence ids; empty only for a general-model sentence that states no checkable fact
    citations: list[str] = Field(default_factory=list)
    # for a sentence quoted from a passage: exactly where it stands in its document
    location: Citation | None = None


class Provenance(BaseModel):
    path: Path
    engine: str  # the specialist engine(s)
    model: str | None = None  # the general model that drafted, when one did
    prompt: str | None = None  # prompt id@version
    fallback: Fallback | None = None  # why the general model's answer is not the one shown
    versions: dict[str, str] = Field(default_factory=dict)


class OutputWarning(BaseModel):
    code: WarningCode
    message: str  # zh-CN, what the user reads
    severity: Severity = "caution"
    message_en: str = ""

    @classmethod
    def of(
        cls, code: WarningCode, severity: Severity | None = None, *, detail: str = "", **values: object
    ) -> OutputWarning:
        """A warning worded from the catalogue; ``detail`` (a conflict sentence, a safe alternative) is
        appended to both languages."""
        chosen: Any = severity or _catalogue()[code.value].get("severity", "caution")
        return cls(
            code=code,
            message=warning_text(code, "zh", **values) + detail,
            message_en=warning_text(code, "en", **values) + detail,
            severity=chosen,
        )


class Confidence(BaseModel):
    value: float = Field(ge=0, le=1)
    method: str  # how it was computed, in a sentence


class ClinicalOutput(BaseModel):
    """What every clinical output carries besides its payload."""

    run_id: str
    evidence: list[Evidence]
    confidence: Confidence
    provenance: Provenance
    status: Status
    warnings: list[OutputWarning]


class DraftOutput(ClinicalOutput):
    """A clinical output a clinician reads as text: the rendered answer and its cited sentences (what
    feedback shows, edits and writes back)."""

    answer: str
    sentences: list[AnswerSentence] = Field(default_factory=list)
