"""What ``ask`` takes and returns: the question, and a cited answer under the one output contract."""

from __future__ import annotations

from pydantic import BaseModel, Field

from medfusion.agents.fusion import FusionOutput
from medfusion.agents.intent import IntentResult
from medfusion.agents.memory import MemoryEntry
from medfusion.agents.reasoning import Differential, Strategy


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    patient_id: str | None = Field(default=None, max_length=64)
    reasoning: Strategy = "direct"
    session_id: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    k: int = Field(default=5, ge=1, le=20)


class AskResult(FusionOutput):
    question: str
    intents: IntentResult
    differential: Differential | None = None
    memory: list[MemoryEntry] = Field(default_factory=list)
