"""Exactly-once markers for batch-job chunks that write to this database (the ``job_chunks`` table).

A database chunk commits its rows and its marker in one transaction, so a chunk whose marker exists is wholly
loaded and one without is not loaded at all. The job runner (``medfusion.jobs``) knows nothing of databases;
job kinds that write here call these functions inside their chunk's own session.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from medfusion.store.tables import JobChunkRow


def chunk_committed(session: Session, job_id: str, index: int) -> bool:
    found = session.execute(
        select(JobChunkRow.chunk).where(JobChunkRow.job_id == job_id, JobChunkRow.chunk == index)
    ).first()
    return found is not None


def commit_marker(session: Session, job_id: str, index: int, items: int) -> None:
    """Record a database chunk as done — call inside the chunk's own transaction."""
    session.add(JobChunkRow(job_id=job_id, chunk=index, items=items, finished_at=datetime.now(UTC)))
    session.flush()


def committed_chunks(session: Session, job_id: str) -> set[int]:
    return set(session.execute(select(JobChunkRow.chunk).where(JobChunkRow.job_id == job_id)).scalars())
