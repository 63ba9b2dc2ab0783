"""Clinician feedback as a retrieval prior (the seed's exploration–evolution layer, chapter 1 §二.(八)(九);
养志康复's feedback-driven retrieval priority): for a question like one clinicians already judged, the
passages behind the accepted answer rise and those behind a rejected answer fall.

Feedback is kept per (question, passage). At search time each candidate passage's prior is
``tanh(Σ similarity × delta / SCALE)`` over the decisions recorded on it, where similarity is the Dice
coefficient of the two questions' character bigrams, counted only from ``THRESHOLD`` up — a decision about
another topic says nothing about this one. The prior is added to the fused score as an extra ranking
channel worth at most ``WEIGHT`` of a first-place vote; only candidates the channels already found are
re-scored.

Why conditional: a first version kept one global score per passage. Replayed on ``triage_toyhom_im`` it
*lowered* test MRR from 0.241 to 0.184 (weight 0.25) and 0.091 (weight 1): in a corpus where every answer is
right for its own question, a passage rejected for one question is often the right one for another, and
demoting it everywhere hurts (docs/feedback.md has the numbers).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from medfusion.cjk import bigrams
from medfusion.store.database import Database
from medfusion.store.tables import KbFeedbackRow

WEIGHT = 1.0
SCALE = 1.0
THRESHOLD = 0.6


def _grams(question: str) -> set[str]:
    return set(bigrams(question))


def similarity(a: set[str], b: set[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


def priors(db: Database, question: str, chunk_ids: Iterable[str]) -> dict[str, float]:
    ids = list(chunk_ids)
    if not ids:
        return {}
    wanted = _grams(question)
    with db.read_session() as session:
        rows = session.execute(
            select(KbFeedbackRow.chunk_id, KbFeedbackRow.grams, KbFeedbackRow.delta).where(
                KbFeedbackRow.chunk_id.in_(ids)
            )
        ).all()
    total: dict[str, float] = defaultdict(float)
    for chunk, grams, delta in rows:
        alike = similarity(wanted, set(grams))
        if alike >= THRESHOLD:
            total[chunk] += alike * delta
    return {chunk: math.tanh(value / SCALE) for chunk, value in total.items() if value}


def record(session: Session, question: str, chunk_ids: Iterable[str], delta: float) -> int:
    """One clinician decision about the answer to ``question``, counted on every passage it cited, inside
    the caller's transaction (the act and its effect are stored together); returns the passages touched."""
    ids = sorted(set(chunk_ids))
    grams = sorted(_grams(question))
    now = datetime.now(UTC)
    for chunk in ids:
        session.add(KbFeedbackRow(chunk_id=chunk, question=question[:2000], grams=grams, delta=delta, at=now))
    return len(ids)
