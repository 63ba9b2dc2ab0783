"""What the validation center and what it grades agree on: an item (one question, one expected answer), the
tasks, and what a target said about one (a prediction) — the vocabulary of every evaluation target, the
platform's and each app's own (``AppSpec.eval_targets``)."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field

Task = Literal["mcq", "refusal", "benign", "adversarial", "classify", "diagnose", "deid", "extract", "ner"]


class Item(BaseModel):
    id: str
    task: Task
    prompt: str
    options: dict[str, str] = Field(default_factory=dict)  # mcq: letter → text
    reference: list[str] = Field(default_factory=list)  # mcq letters, a label, a safe response …
    labels: list[str] = Field(default_factory=list)  # classify/diagnose: the closed label set
    meta: dict[str, Any] = Field(default_factory=dict)  # category, subject …


class Prediction(BaseModel):
    item_id: str
    output: str = ""
    choice: list[str] = Field(default_factory=list)  # mcq letters / predicted label(s), best first
    refused: bool | None = None
    confidence: float | None = None
    error: str | None = None  # the target failed on this item: scored as an error, the run goes on
    latency_ms: float = 0.0
    tokens: int = 0
    path: str | None = None  # specialist | llm | fused, when the target reports it
    claims: int | None = None  # claims read in the output (numbers, doses, drugs, diagnoses), when checked
    unsupported_claims: int | None = None  # of those, supported by neither the prompt nor the evidence


class Manifest(BaseModel):
    name: str
    version: str
    licence: str
    content_hash: str  # sha256 of the source files
    size: int  # items loaded
    malformed: dict[str, int] = Field(default_factory=dict)  # reason → rows, never silently skipped
    source: str


class Dataset(BaseModel):
    manifest: Manifest
    items: list[Item]


def timed(item: Item, started: float, **fields: object) -> Prediction:
    """The prediction for ``item``, with its latency since ``started`` (``time.perf_counter()``)."""
    return Prediction(item_id=item.id, latency_ms=round((time.perf_counter() - started) * 1000, 2), **fields)
