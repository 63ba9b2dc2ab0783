"""Clinician feedback on drafts (seed report chapter 1 §二.(八)(九): feedback from clinicians drives
alignment). A reviewer with ``draft:review`` accepts, edits or rejects a stored run of any
app. The act, the run's new status and its audit entry are written in one transaction, together
with its effect on retrieval: for questions like this one, the passages the draft cited count one accepted
answer (accept), half of one (edit: partly right) or one rejected answer (reject) — see
:mod:`medfusion.feedback.prior`.
Runs about a patient also need ``patient:read``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from medfusion.apps import registry
from medfusion.contract import DraftOutput
from medfusion.errors import InvalidInput, NotFound, PermissionDenied
from medfusion.feedback import prior as feedback_prior
from medfusion.record.clinical_time import SHANGHAI
from medfusion.record.models import ClinicalNote, NoteSection, NoteType
from medfusion.store import audit
from medfusion.store.access import Permission, Principal
from medfusion.store.database import Database
from medfusion.store.patients import PatientRepository
from medfusion.store.resource_versions import WriteContext
from medfusion.store.tables import AgentRunRow, FeedbackRow


class Action(StrEnum):
    accept = "accept"
    edit = "edit"
    reject = "reject"


STATUS = {Action.accept: "confirmed", Action.edit: "edited", Action.reject: "rejected"}
# an edit means the draft was partly right: half the credit of an acceptance
DELTA = {Action.accept: 1.0, Action.edit: 0.5, Action.reject: -1.0}


class FeedbackRequest(BaseModel):
    run_id: str = Field(min_length=1, max_length=36)
    action: Action
    edited: str | None = Field(default=None, max_length=20_000, description="the corrected text (edit)")
    reason: str | None = Field(default=None, max_length=2_000, description="why (required for reject)")

    @model_validator(mode="after")
    def _complete(self) -> FeedbackRequest:
        if self.action is Action.edit and not (self.edited and self.edited.strip()):
            raise ValueError("edit needs the edited text")
        if self.action is Action.reject and not (self.reason and self.reason.strip()):
            raise ValueError("reject needs a reason")
        return self


class FeedbackRecord(BaseModel):
    id: int
    at: datetime
    username: str
    run_id: str
    kind: str
    action: Action
    status: str  # the run's status after this act
    passages: int  # passages whose retrieval weight changed
    note_id: str | None = None  # the chart note a confirmed draft became (apps with write_back)
    replayed: bool = False  # the same act by the same reviewer again (a double submit): nothing written twice


class FeedbackEntry(BaseModel):
    id: int
    at: datetime
    username: str
    role: str
    run_id: str
    kind: str
    action: Action
    prompt: str
    draft: str
    edited: str | None
    reason: str | None
    patient_id: str | None


def cited_passages(draft: DraftOutput) -> list[str]:
    """Chunk ids of the passages the draft's sentences cite."""
    cited = {c for s in draft.sentences for c in s.citations}
    return [
        e.chunk_id for e in draft.evidence if e.kind == "passage" and e.id in cited and e.chunk_id is not None
    ]


def write_back_title(agent: str) -> str | None:
    """The chart document a confirmed draft of ``agent`` becomes (the app's ``AppSpec.write_back``)."""
    spec = registry.get(agent)
    return spec.write_back.title if spec and spec.write_back else None


def write_back_note_id(patient_id: str | None, agent: str, run_id: str) -> str:
    """The chart note a confirmed run becomes (a FHIR id; a second confirmation replaces the first)."""
    return f"{patient_id}-{agent.replace('_', '-')}-{run_id[:8]}"


class FeedbackService:
    def __init__(self, db: Database, principal: Principal) -> None:
        self.db = db
        self.principal = principal

    def _require(self, permission: Permission) -> None:
        if not self.principal.may(permission):
            raise PermissionDenied(
                f"角色 {self.principal.role} 无权执行 {permission.value}",
                details={"permission": permission.value},
            )

    def record(self, request: FeedbackRequest) -> FeedbackRecord:
        self._require(Permission.draft_review)
        now = datetime.now(UTC)
        with self.db.session() as session:
            # locked until this review commits: a second submit racing it (a double click) waits, then sees
            # it (``_same_act``) — PostgreSQL needs the row lock; SQLite's BEGIN IMMEDIATE already serialises
            run = session.get(AgentRunRow, request.run_id, with_for_update=True)
            if run is None:
                raise NotFound(f"没有这次草稿记录 no run {request.run_id}")
            if run.patient_id:
                self._require(Permission.patient_read)
            if run.status == "refused":
                raise InvalidInput.for_field(
                    "run_id", "拒答的请求没有可审核的草稿 a refused request has no draft"
                )
            repeated = self._same_act(session, run, request)
            if repeated is not None:
                return repeated
            draft = DraftOutput.model_validate(run.result)
            passages = cited_passages(draft)
            row = FeedbackRow(
                at=now,
                username=self.principal.username,
                role=self.principal.role,
                run_id=run.id,
                kind=run.agent,
                action=request.action.value,
                prompt=run.question,
                draft=draft.answer,
                edited=request.edited,
                reason=request.reason,
                patient_id=run.patient_id,
                passages=passages,
            )
            session.add(row)
            run.status = STATUS[request.action]
            touched = feedback_prior.record(session, run.question, passages, DELTA[request.action])
            session.flush()
            note_id = None
            title = write_back_title(run.agent)
            if title and run.patient_id and request.action is not Action.reject:
                note_id = self._write_back(session, run, title, request.edited or row.draft)
            audit.record(
                session,
                self.principal.actor,
                f"feedback.{request.action.value}",
                audit.Outcome.success,
                patient_id=run.patient_id,
                detail={"run_id": run.id, "feedback_id": row.id, "kind": run.agent, "note_id": note_id},
            )
            return FeedbackRecord(
                id=row.id,
                at=now,
                username=row.username,
                run_id=run.id,
                kind=run.agent,
                action=request.action,
                status=run.status,
                passages=touched,
                note_id=note_id,
            )

    def _same_act(
        self, session: Session, run: AgentRunRow, request: FeedbackRequest
    ) -> FeedbackRecord | None:
        """A second submit of the act this reviewer just recorded (a double click, a resent form) gets the
        first one's record back instead of a second feedback row, a second retrieval re-weighting and a
        second write-back. Inside the write transaction (``BEGIN IMMEDIATE``), so two racing submits are
        serialised and the second sees the first. A different act (another reviewer, another action or
        text) is a new review and is recorded. The run row is locked (``record``), so on PostgreSQL too the
        second of two racing submits reads the first one's row."""
        if run.status != STATUS[request.action]:
            return None
        last = session.scalars(
            select(FeedbackRow).where(FeedbackRow.run_id == run.id).order_by(FeedbackRow.id.desc()).limit(1)
        ).first()
        if last is None or (last.username, last.action, last.edited, last.reason) != (
            self.principal.username,
            request.action.value,
            request.edited,
            request.reason,
        ):
            return None
        title = write_back_title(run.agent)
        written = bool(title and run.patient_id and request.action is not Action.reject)
        audit.record(
            session,
            self.principal.actor,
            "feedback.duplicate",
            audit.Outcome.success,
            patient_id=run.patient_id,
            detail={"run_id": run.id, "feedback_id": last.id, "kind": run.agent},
        )
        return FeedbackRecord(
            id=last.id,
            at=last.at,
            username=last.username,
            run_id=run.id,
            kind=run.agent,
            action=request.action,
            status=run.status,
            passages=len(last.passages or []),
            note_id=write_back_note_id(run.patient_id, run.agent, run.id) if written else None,
            replayed=True,
        )

    def _write_back(self, session: Session, run: AgentRunRow, title: str, text: str) -> str:
        """A confirmed draft of an app that declares ``write_back`` goes into the chart as a 会诊记录 — only
        once a clinician has accepted or edited it, authored by that clinician."""
        self._require(Permission.patient_write)
        assert run.patient_id is not None
        repository = PatientRepository(
            session, WriteContext(actor=self.principal.username, source="feedback.write_back")
        )
        chart = repository.get_chart(run.patient_id)
        note = ClinicalNote(
            id=write_back_note_id(run.patient_id, run.agent, run.id),
            note_type=NoteType.consultation_record,
            title=title,
            author=self.principal.username,
            written_at=datetime.now(SHANGHAI),
            sections=[NoteSection(title=title, text=text[:200_000])],
        )
        notes = [n for n in chart.notes if n.id != note.id]  # a second confirmation replaces the first
        repository.replace_chart(chart.model_copy(update={"notes": [*notes, note]}))
        audit.record(
            session,
            self.principal.actor,
            "patient.note.write",
            audit.Outcome.success,
            patient_id=run.patient_id,
            detail={"note_id": note.id, "run_id": run.id},
        )
        return note.id

    def entries(self, run_id: str | None = None, limit: int = 200) -> list[FeedbackEntry]:
        self._require(Permission.draft_review)
        query = select(FeedbackRow).order_by(FeedbackRow.id.desc()).limit(limit)
        if run_id:
            query = query.where(FeedbackRow.run_id == run_id)
        with self.db.session() as session:
            rows = list(session.scalars(query))
            if any(r.patient_id for r in rows) and not self.principal.may(Permission.patient_read):
                rows = [r for r in rows if not r.patient_id]
            audit.record(
                session,
                self.principal.actor,
                "feedback.list",
                audit.Outcome.success,
                detail={"run_id": run_id, "returned": len(rows)},
            )
            return [
                FeedbackEntry(
                    id=r.id,
                    at=r.at,
                    username=r.username,
                    role=r.role,
                    run_id=r.run_id,
                    kind=r.kind,
                    action=Action(r.action),
                    prompt=r.prompt,
                    draft=r.draft,
                    edited=r.edited,
                    reason=r.reason,
                    patient_id=r.patient_id,
                )
                for r in rows
            ]
