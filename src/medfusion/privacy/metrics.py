"""De-identification metrics per entity type, as plain functions (the validation center registers them).

- recall: gold identifiers whose every character is covered by some detected span (of any type — a phone
  removed as a hospital number is still removed);
- precision: detected spans that overlap a gold identifier;
- leak rate: gold identifier characters left uncovered (what would reach the output);
- clinical removal rate: characters of clinical entities (drugs, diseases, anatomy …) wrongly covered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from medfusion.privacy.entities import Span

GoldSpan = dict[str, Any]  # {"start", "end", "type", "text"}


class TypeScore(BaseModel):
    type: str
    gold: int
    predicted: int
    recall: float
    precision: float
    f1: float
    leak_rate: float


class DeidReport(BaseModel):
    documents: int
    per_type: list[TypeScore]
    overall_recall: float
    overall_precision: float
    overall_leak_rate: float


def _covered(start: int, end: int, spans: Sequence[Span]) -> int:
    chars = 0
    for position in range(start, end):
        if any(s.start <= position < s.end for s in spans):
            chars += 1
    return chars


def score(documents: Iterable[tuple[str, Sequence[GoldSpan], Sequence[Span]]]) -> DeidReport:
    gold_n: dict[str, int] = defaultdict(int)
    found_n: dict[str, int] = defaultdict(int)
    gold_chars: dict[str, int] = defaultdict(int)
    leaked_chars: dict[str, int] = defaultdict(int)
    pred_n: dict[str, int] = defaultdict(int)
    pred_hit: dict[str, int] = defaultdict(int)
    count = 0
    for _text, gold, predicted in documents:
        count += 1
        for g in gold:
            kind = str(g["type"])
            length = int(g["end"]) - int(g["start"])
            covered = _covered(int(g["start"]), int(g["end"]), predicted)
            gold_n[kind] += 1
            gold_chars[kind] += length
            leaked_chars[kind] += length - covered
            found_n[kind] += covered == length
        for p in predicted:
            pred_n[p.type.value] += 1
            pred_hit[p.type.value] += any(int(g["start"]) < p.end and p.start < int(g["end"]) for g in gold)
    rows = []
    for kind in sorted(set(gold_n) | set(pred_n)):
        recall = found_n[kind] / gold_n[kind] if gold_n[kind] else 1.0
        precision = pred_hit[kind] / pred_n[kind] if pred_n[kind] else 1.0
        f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
        leak = leaked_chars[kind] / gold_chars[kind] if gold_chars[kind] else 0.0
        rows.append(
            TypeScore(
                type=kind,
                gold=gold_n[kind],
                predicted=pred_n[kind],
                recall=round(recall, 4),
                precision=round(precision, 4),
                f1=round(f1, 4),
                leak_rate=round(leak, 4),
            )
        )
    total_gold = sum(gold_n.values())
    total_pred = sum(pred_n.values())
    return DeidReport(
        documents=count,
        per_type=rows,
        overall_recall=round(sum(found_n.values()) / total_gold, 4) if total_gold else 1.0,
        overall_precision=round(sum(pred_hit.values()) / total_pred, 4) if total_pred else 1.0,
        overall_leak_rate=round(sum(leaked_chars.values()) / max(1, sum(gold_chars.values())), 4),
    )


def clinical_removal_rate(
    documents: Iterable[tuple[str, Sequence[tuple[int, int]], Sequence[Span]]],
) -> float:
    """Share of clinical-entity characters that a de-identifier would remove (target ≤ 1%)."""
    total = removed = 0
    for _text, entities, predicted in documents:
        for start, end in entities:
            total += end - start
            removed += _covered(start, end, predicted)
    return removed / total if total else 0.0
