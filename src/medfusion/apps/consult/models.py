"""What the pocket chief physician takes and returns (the one output contract plus its clinical payload)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from medfusion.agents.guardrails import Finding
from medfusion.contract import Confidence, OutputWarning, Provenance, Status
from medfusion.knowledge.answers import AnswerSentence, Evidence

Level = Literal["junior", "attending", "senior"]


class ConsultRequest(BaseModel):
    case: str = Field(min_length=2, max_length=4000, description="主诉 + 现病史/查体/检查发现")
    patient_id: str | None = Field(default=None, max_length=64)
    level: Level = "attending"


class DrugIdea(BaseModel):
    name: str
    evidence: list[str]
    caution: str | None = None  # a conflict with the patient's chart, when one was found


class Hypothesis(BaseModel):
    disease: str
    probability: float
    supporting: list[str]
    opposing: list[str]
    unexplained: list[str]
    typical_not_reported: list[str]
    checks: list[str] = Field(default_factory=list)
    treatment: list[AnswerSentence] = Field(default_factory=list)
    drugs: list[DrugIdea] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)  # ids of the graph facts behind the profile


class ConsultResult(BaseModel):
    run_id: str
    case: str
    level: Level
    present: list[str]
    absent: list[str]
    hypotheses: list[Hypothesis]
    sentences: list[AnswerSentence]  # the explanation, each sentence cited
    answer: str  # Markdown for the asking doctor, depth by level
    evidence: list[Evidence]
    confidence: Confidence
    provenance: Provenance
    status: Status
    warnings: list[OutputWarning]
    guardrails: list[Finding] = Field(default_factory=list)
    reasoning: str | None = None
    trace: list[dict[str, object]] = Field(default_factory=list)
