"""Every step of an agent run — model calls, tool calls, guardrail decisions — with its inputs, outputs,
timing and tokens, kept for the audit log and the UI. Texts are truncated, never summarised away."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

StepKind = Literal["intent", "memory", "plan", "tool", "llm", "guardrail", "reasoning", "compose"]
_KEEP = 2000


def clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _KEEP:
        return value[:_KEEP] + f"…(+{len(value) - _KEEP})"
    return value


class Step(BaseModel):
    index: int
    kind: StepKind
    name: str
    input: dict[str, Any] = Field(default_factory=dict)
    output: dict[str, Any] = Field(default_factory=dict)
    outcome: str = "ok"  # ok | error code | an llm Reason
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    ms: float = 0.0
    tokens: int = 0


class Trace:
    def __init__(self) -> None:
        self.steps: list[Step] = []

    @contextmanager
    def step(self, kind: StepKind, name: str, **inputs: Any) -> Iterator[Step]:
        """Times the block; the caller fills ``output``, ``outcome`` and ``tokens`` on the yielded step."""
        step = Step(
            index=len(self.steps), kind=kind, name=name, input={k: clip(v) for k, v in inputs.items()}
        )
        started = time.perf_counter()
        try:
            yield step
        except Exception as error:
            step.outcome = f"error:{type(error).__name__}"
            raise
        finally:
            step.ms = round((time.perf_counter() - started) * 1000, 2)
            step.output = {k: clip(v) for k, v in step.output.items()}
            self.steps.append(step)

    def as_json(self) -> list[dict[str, Any]]:
        """The steps as stored with a run and returned to the UI."""
        return [s.model_dump(mode="json") for s in self.steps]

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.steps)
