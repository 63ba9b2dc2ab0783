"""Clinician feedback as a retrieval prior (the seed's exploration–evolution layer, chapter 1 §二.(八)(九);
养志康复's feedback-driven retrieval priority): passages behind answers clinicians accepted rise, passages
behind rejected answers fall.

Each passage keeps counts of accepted and rejected answers that cited it. Its prior is
``tanh((accepts − rejects) / SCALE)`` in [−1, 1], added to the fused score as an extra ranking channel worth
at most ``WEIGHT`` of a first-place vote — enough to reorder near-ties, never enough to lift a passage no
channel found (only candidates already retrieved are re-scored). ``WEIGHT`` was chosen by replay on a
development slice of ``triage_toyhom_im`` (docs/feedback.md); the reported gain is on a disjoint test slice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from medfusion.store.database import Database
from medfusion.store.tables import KbFeedbackRow

WEIGHT = 1.0
SCALE = 2.0


def priors(db: Database, chunk_ids: Iterable[str]) -> dict[str, float]:
    ids = list(chunk_ids)
    if not ids:
        return {}
    with db.session() as session:
        rows = session.execute(
            select(KbFeedbackRow.chunk_id, KbFeedbackRow.accepts, KbFeedbackRow.rejects).where(
                KbFeedbackRow.chunk_id.in_(ids)
            )
        ).all()
    return {chunk: math.tanh((accepts - rejects) / SCALE) for chunk, accepts, rejects in rows}


def record(session: Session, chunk_ids: Iterable[str], accepted: bool, amount: float = 1.0) -> int:
    """Count one clinician decision against every passage the answer cited, inside the caller's
    transaction (the act and its effect are stored together); returns the passages touched."""
    ids = sorted(set(chunk_ids))
    now = datetime.now(UTC)
    query = select(KbFeedbackRow).where(KbFeedbackRow.chunk_id.in_(ids))
    existing = {r.chunk_id: r for r in session.scalars(query)}
    for chunk in ids:
        row = existing.get(chunk)
        if row is None:
            row = KbFeedbackRow(chunk_id=chunk, accepts=0.0, rejects=0.0, updated_at=now)
            session.add(row)
        if accepted:
            row.accepts += amount
        else:
            row.rejects += amount
        row.updated_at = now
    return len(ids)
