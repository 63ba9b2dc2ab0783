"""Stored runs: every assistive output (ask, consult, MDT …) is kept with its trace, audited, and open to
clinician feedback until someone confirms, edits or rejects it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from medfusion.contract import DraftOutput
from medfusion.errors import NotFound, PermissionDenied
from medfusion.store import audit
from medfusion.store.access import Permission, Principal
from medfusion.store.database import Database
from medfusion.store.tables import AgentRunRow


class RunRecord(BaseModel):
    run_id: str
    agent: str  # ask | consult | mdt …
    question: str
    patient_id: str | None
    path: str
    model: str | None
    status: str
    result: dict[str, Any]  # the output contract; ``answer``, ``sentences`` and ``evidence`` feed feedback
    steps: list[dict[str, Any]]


def store_run(db: Database, principal: Principal, record: RunRecord) -> None:
    with db.session() as session:
        session.add(
            AgentRunRow(
                id=record.run_id,
                at=datetime.now(UTC),
                username=principal.username,
                role=principal.role,
                agent=record.agent,
                status=record.status,
                patient_id=record.patient_id,
                path=record.path,
                model=record.model,
                question=record.question,
                result=record.result,
                steps=record.steps,
            )
        )
        audit.record(
            session,
            principal.actor,
            f"agent.{record.agent}",
            audit.Outcome.success,
            patient_id=record.patient_id,
            detail={"run_id": record.run_id, "path": record.path, "status": record.status},
        )


class RunHeader(BaseModel):
    """What every view of a stored run shows: which run, when, whose, which agent, patient and path."""

    run_id: str
    at: datetime
    username: str
    agent: str
    patient_id: str | None
    path: str

    @classmethod
    def fields_of(cls, row: AgentRunRow) -> dict[str, Any]:
        return {
            "run_id": row.id,
            "at": row.at,
            "username": row.username,
            "agent": row.agent,
            "patient_id": row.patient_id,
            "path": row.path,
        }


class StoredRun(RunHeader):
    status: str  # needs_clinician_confirmation, refused, or what a clinician made of it
    result: dict[str, object]
    steps: list[dict[str, object]]


def stored_run(db: Database, principal: Principal, run_id: str) -> StoredRun:
    """A stored run with its trace, for the asker (or an admin); audited when it concerns a patient.
    Anyone else is told it does not exist."""
    with db.session() as session:
        row = session.get(AgentRunRow, run_id)
        if row is None or not (row.username == principal.username or principal.role in {"admin", "system"}):
            raise NotFound(f"没有这次记录 no run {run_id}")
        if row.patient_id:
            audit.record(
                session,
                principal.actor,
                "agent.run.read",
                audit.Outcome.success,
                patient_id=row.patient_id,
                detail={"run_id": run_id},
            )
        return StoredRun(
            **RunHeader.fields_of(row),
            status=row.status,
            result=row.result,
            steps=row.steps,
        )


class PendingRun(RunHeader):
    question: str
    answer: str
    draft: DraftOutput  # the whole output: evidence, sentences with citations, warnings, provenance


def pending_runs(db: Database, principal: Principal, limit: int = 50) -> list[PendingRun]:
    """Drafts waiting for a clinician (``draft:review``); runs about a patient only for those who may read
    charts. The listing is audited."""
    if not principal.may(Permission.draft_review):
        raise PermissionDenied("审核草稿需要 draft:review 权限")
    query = (
        select(AgentRunRow)
        .where(AgentRunRow.status == "needs_clinician_confirmation")
        .order_by(AgentRunRow.at.desc())
        .limit(limit)
    )
    if not principal.may(Permission.patient_read):
        query = query.where(AgentRunRow.patient_id.is_(None))
    with db.session() as session:
        rows = list(session.scalars(query))
        audit.record(
            session,
            principal.actor,
            "agent.run.list",
            audit.Outcome.success,
            detail={"returned": len(rows), "surface": "web"},
        )
        drafts = [DraftOutput.model_validate(r.result) for r in rows]
        return [
            PendingRun(**RunHeader.fields_of(r), question=r.question, answer=d.answer, draft=d)
            for r, d in zip(rows, drafts, strict=True)
        ]
