"""What the pocket chief physician takes and returns (the one output contract plus its clinical payload)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from medfusion.agents.fusion import FusionOutput
from medfusion.contract import AnswerSentence

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


class ConsultResult(FusionOutput):
    """The contract (``sentences``: the explanation, each sentence cited; ``answer``: Markdown for the
    asking doctor, depth by level) plus the differential."""

    case: str
    level: Level
    present: list[str]
    absent: list[str]
    hypotheses: list[Hypothesis]
