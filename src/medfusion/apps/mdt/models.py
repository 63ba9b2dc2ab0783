"""MDT input and output types."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from medfusion.agents.fusion import FusionOutput
from medfusion.agents.guardrails import Finding
from medfusion.contract import Fallback
from medfusion.graph.conflicts import Conflict


class MdtRequest(BaseModel):
    patient_id: str | None = Field(default=None, max_length=64)
    bundle: dict[str, Any] | None = Field(default=None, description="a FHIR R4 Bundle with one patient")
    question: str = Field(default="", max_length=2000, description="会诊目的（可选）")
    proposed_drugs: list[str] = Field(default_factory=list, max_length=30)
    proposed_procedures: list[str] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _one_source(self) -> MdtRequest:
        if (self.patient_id is None) == (self.bundle is None):
            raise ValueError("give exactly one of patient_id or bundle")
        return self


class CaseDiagnosis(BaseModel):
    name: str
    icd10: str
    primary: bool


class MdtCase(BaseModel):
    patient_id: str
    sex: str
    age: int | None  # None: the record holds no birth date (R4 Patient.birthDate 0..1)
    diagnoses: list[CaseDiagnosis]
    key_results: list[str]
    medications: list[str]
    allergies: list[str]
    procedures: list[str]


class Option(BaseModel):
    """One recommendation of one specialty: what to do, why, on what evidence, how sure."""

    key: str  # what makes two specialties' options the same: drug:华法林, check:INR, treat:房颤 …
    text: str
    basis: str
    citations: list[str]
    confidence: float = Field(ge=0, le=1)


class SpecialtyView(BaseModel):
    specialty: str
    label: str
    reason: str  # why it is on the team
    options: list[Option]
    confidence: float
    path: Literal["specialist", "llm", "fused"]
    fallback: Fallback | None = None
    tokens: int = 0
    findings: list[Finding] = Field(default_factory=list)


class ConsensusItem(BaseModel):
    key: str
    text: str
    points: float  # Borda points weighted by each specialty's confidence
    supporters: list[str]
    citations: list[str]


class MdtResult(FusionOutput):
    """The contract (``answer``: the minutes again, for feedback and export; ``sentences``: the consensus,
    each item cited) plus the consultation."""

    case: MdtCase
    routing: Literal["solo", "team"]
    complexity: int
    specialties: list[SpecialtyView]
    consensus: list[ConsensusItem]
    conflicts: list[Conflict]
    rounds: int
    minutes: str  # Markdown
    tokens: int
