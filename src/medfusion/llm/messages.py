"""What goes to a general model and what comes back, independent of any provider's wire format.

A call ends in exactly one of two values: a :class:`Completion`, or an :class:`Unavailable` that says why
there is no general-model answer (none configured, unreachable, timed out …). Callers branch on the type and
take their specialist path on ``Unavailable`` — a failing model is a state, not a crash.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field


class Message(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)  # assistant turns that called tools
    tool_call_id: str | None = None  # tool turns: which call this answers
    name: str | None = None


class ToolSpec(BaseModel):
    """A function the model may call; ``parameters`` is a JSON schema object."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str
    parameters: dict[str, Any]


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: str  # JSON text as the model wrote it; the runtime parses and validates it


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0  # in the configured currency (元), from the per-1k prices
    estimated: bool = False  # the endpoint reported no usage; counted from the text instead

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Completion(BaseModel):
    text: str
    tool_calls: list[ToolCall] = Field(default_factory=list)
    model: str  # the name the endpoint reported (or was asked for)
    alias: str = "default"  # the configured name: default, fast, large …
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    latency_ms: float = 0.0
    cached: bool = False
    attempts: int = 1
    deidentified: bool = False  # text was pseudonymised before it left and restored on return


class Reason(StrEnum):
    """Why there is no general-model answer; stable codes for provenance, logs and ``llm ping``."""

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


class Unavailable(BaseModel):
    reason: Reason
    detail: str = ""
    alias: str = "default"
    partial_text: str = ""  # what a stream delivered before it failed (never used as an answer)
    attempts: int = 0

    def describe(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value


class Delta(BaseModel):
    """One piece of a streamed answer."""

    text: str


Reply = Completion | Unavailable
Message.model_rebuild()
