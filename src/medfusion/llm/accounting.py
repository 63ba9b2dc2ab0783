"""Token and cost accounting per call: what each call used, cost, how long it took and how it ended.

Records carry no prompt or answer text (they go to logs and to managers' reports); the agent trace keeps the
content where the audit log needs it.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from medfusion.llm.messages import Usage

log = logging.getLogger("medfusion.llm")


class CallRecord(BaseModel):
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    alias: str
    model: str
    purpose: str
    outcome: str  # ok | a Reason code
    usage: Usage = Field(default_factory=Usage)
    latency_ms: float = 0.0
    attempts: int = 0
    cached: bool = False
    streamed: bool = False


class Totals(BaseModel):
    calls: int = 0
    failures: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


class Ledger:
    """Calls of one process (bounded), with running totals."""

    def __init__(self, keep: int = 10_000) -> None:
        self.keep = keep
        self.records: list[CallRecord] = []
        self.totals = Totals()
        self._lock = threading.Lock()

    def add(self, record: CallRecord) -> None:
        with self._lock:
            self.records.append(record)
            del self.records[: -self.keep]
            t = self.totals
            t.calls += 1
            t.failures += record.outcome != "ok"
            t.cached += record.cached
            t.prompt_tokens += record.usage.prompt_tokens
            t.completion_tokens += record.usage.completion_tokens
            t.cost = round(t.cost + record.usage.cost, 6)
        log.info(
            "llm call alias=%s model=%s purpose=%s outcome=%s tokens=%d+%d latency_ms=%.0f attempts=%d "
            "cached=%s",
            record.alias,
            record.model,
            record.purpose,
            record.outcome,
            record.usage.prompt_tokens,
            record.usage.completion_tokens,
            record.latency_ms,
            record.attempts,
            record.cached,
        )


def priced(usage: Usage, input_per_1k: float, output_per_1k: float) -> Usage:
    cost = usage.prompt_tokens / 1000 * input_per_1k + usage.completion_tokens / 1000 * output_per_1k
    return usage.model_copy(update={"cost": round(cost, 6)})
