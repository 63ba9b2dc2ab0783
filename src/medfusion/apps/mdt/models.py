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
    case: str | None = Field(
        default=None,
        min_length=2,
        max_length=4000,
        description="病例摘要（年龄、性别、诊断、在用药物、过敏、拟用药物）— read as a chart, not stored",
    )
    question: str = Field(default="", max_length=2000, description="会诊目的（可选）")
    proposed_drugs: list[str] = Field(default_factory=list, max_length=30)
    proposed_procedures: list[str] = Field(default_factory=list, max_length=20)
    specialties: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="指定参加的科室（specialties.toml 的键）；空：按病例内容自动组队",
    )

    @model_validator(mode="after")
    def _one_source(self) -> MdtRequest:
        if sum(source is not None for source in (self.patient_id, self.bundle, self.case)) != 1:
            raise ValueError("give exactly one of patient_id, bundle or case")
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


class TeamMember(BaseModel):
    specialty: str
    label: str
    reason: str


class MdtEvent(BaseModel):
    """What a running MDT reports as it goes (``MdtService.run(..., progress=...)``): the team once it is
    chosen, each specialty's view as it answers, a second round's team, and the consensus being formed.
    Not part of the API's output; the web page shows it while the run goes on."""

    kind: Literal["team", "view", "round", "consensus"]
    round: int = 1
    routing: Literal["solo", "team"] | None = None
    team: list[TeamMember] = Field(default_factory=list)  # kind team / round: who is asked
    view: SpecialtyView | None = None  # kind view
