"""Record events: every write to the record appends what changed to an outbox, in the same transaction.

A :class:`RecordEvent` names the change (``observation.recorded``), whose chart (patient id), which resource
(``Observation/<id>``, FHIR resource types), when it was written, and the SHA-256 of the resource's canonical
JSON — a hash, never the resource, so the outbox and anything that prints it hold no PII beyond the patient
id (the same rule as the audit log). Subscribers read the chart for content.

Sequence numbers come from a one-row head that each append locks (as the audit chain does), so on PostgreSQL
too events commit in sequence order and a reader that has seen ``seq`` n never later finds an n−1 appear.
On a chart replace only what differs is emitted: new resources, changed ones (a changed resource is never
overwritten silently) and removed ones.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, Field
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from medfusion.interop.fhir.export import RESOURCE_TYPES
from medfusion.record.models import CHILD_KINDS, Encounter, Patient, PatientChart
from medfusion.store.database import Database
from medfusion.store.tables import EventAppliedRow, RecordEventHeadRow, RecordEventRow

# chart part → (event noun, verb for a new resource); a changed one is ``<noun>.updated``, a removed one
# ``<noun>.removed``. Encounters say more: admitted / transferred / discharged (see encounter_changes).
_NEW_VERB: dict[str, tuple[str, str]] = {
    "encounters": ("encounter", "admitted"),
    "conditions": ("condition", "recorded"),
    "observations": ("observation", "recorded"),
    "procedures": ("procedure", "recorded"),
    "medications": ("medication", "ordered"),
    "allergies": ("allergy", "recorded"),
    "immunizations": ("immunization", "recorded"),
    "notes": ("note", "written"),
}
EVENT_TYPES: frozenset[str] = frozenset(
    {"patient.created", "patient.updated", "encounter.transferred", "encounter.discharged"}
    | {f"{noun}.{verb}" for noun, verb in _NEW_VERB.values()}
    | {f"{noun}.{change}" for noun, _ in _NEW_VERB.values() for change in ("updated", "removed")}
)


class RecordEvent(BaseModel):
    """One change to the record. ``seq`` orders the outbox; ``id`` is globally unique (relay dedupe key)."""

    seq: int = Field(ge=1)
    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    type: str = Field(examples=["observation.recorded"])
    patient: str = Field(examples=["P0000001"])
    resource: str = Field(examples=["Observation/P0000001-obs-1"])
    time: datetime = Field(description="When the change was written (UTC, timezone-aware).")
    payload_hash: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the resource's canonical JSON."
    )


class EventDraft(NamedTuple):
    """An event before it has a sequence number."""

    type: str
    patient: str
    resource: str
    payload_hash: str


def payload_hash(resource: BaseModel) -> str:
    """SHA-256 over the resource's JSON with sorted keys and no whitespace (stable across round trips)."""
    canonical = json.dumps(
        resource.model_dump(mode="json"), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def patient_changes(old: Patient | None, new: Patient) -> list[EventDraft]:
    digest = payload_hash(new)
    if old is None:
        return [EventDraft("patient.created", new.id, f"Patient/{new.id}", digest)]
    if payload_hash(old) == digest:
        return []
    return [EventDraft("patient.updated", new.id, f"Patient/{new.id}", digest)]


def encounter_changes(old: Encounter | None, new: Encounter) -> list[str]:
    """Event types for one encounter: a new one is admitted (and discharged too when it arrives with a
    discharge time, as historical imports do); a changed one is transferred when its department, ward or
    bed moved, discharged when it gained a discharge time, and otherwise updated."""
    if old is None:
        return ["encounter.admitted"] + (["encounter.discharged"] if new.discharged_at else [])
    kinds = []
    if (old.department, old.ward, old.bed) != (new.department, new.ward, new.bed):
        kinds.append("encounter.transferred")
    if old.discharged_at is None and new.discharged_at is not None:
        kinds.append("encounter.discharged")
    return kinds or ["encounter.updated"]


def chart_changes(old: PatientChart | None, new: PatientChart) -> list[EventDraft]:
    """What a write of ``new`` over ``old`` (``None``: a new chart) changes, in chart order."""
    patient_id = new.patient.id
    drafts = patient_changes(old.patient if old else None, new.patient)
    for kind in CHILD_KINDS:
        noun, verb = _NEW_VERB[kind]
        resource_type = RESOURCE_TYPES[kind]
        before: dict[str, Any] = {item.id: item for item in getattr(old, kind)} if old else {}
        for item in getattr(new, kind):
            previous = before.pop(item.id, None)
            digest = payload_hash(item)
            if previous is not None and payload_hash(previous) == digest:
                continue
            if kind == "encounters":
                types = encounter_changes(previous, item)
            else:
                types = [f"{noun}.{verb}" if previous is None else f"{noun}.updated"]
            drafts.extend(EventDraft(t, patient_id, f"{resource_type}/{item.id}", digest) for t in types)
        for gone in before.values():  # removed: the hash is of the resource as it was
            drafts.append(
                EventDraft(f"{noun}.removed", patient_id, f"{resource_type}/{gone.id}", payload_hash(gone))
            )
    return drafts


# --- the outbox ---------------------------------------------------------------------------------------


def append(session: Session, drafts: Sequence[EventDraft], *, at: datetime | None = None) -> int:
    """Append events inside the caller's transaction; returns the newest sequence number."""
    head = session.execute(
        select(RecordEventHeadRow).where(RecordEventHeadRow.id == 1).with_for_update()
    ).scalar_one()
    if not drafts:
        return head.seq
    when = (at or datetime.now(UTC)).astimezone(UTC)
    first = head.seq + 1
    rows = [
        {
            "seq": first + i,
            "id": uuid.uuid4().hex,
            "type": d.type,
            "patient_id": d.patient,
            "resource": d.resource,
            "at": when,
            "payload_hash": d.payload_hash,
        }
        for i, d in enumerate(drafts)
    ]
    session.execute(insert(RecordEventRow), rows)
    head.seq = first + len(drafts) - 1
    session.flush()
    return head.seq


def from_row(row: RecordEventRow) -> RecordEvent:
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)  # SQLite hands back naive UTC
    return RecordEvent(
        seq=row.seq,
        id=row.id,
        type=row.type,
        patient=row.patient_id,
        resource=row.resource,
        time=at,
        payload_hash=row.payload_hash,
    )


def head(session: Session) -> int:
    """The newest sequence number (0 before the first event)."""
    return session.execute(select(RecordEventHeadRow.seq).where(RecordEventHeadRow.id == 1)).scalar_one()


def count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(RecordEventRow)).scalar_one()


def after(session: Session, seq: int, *, limit: int = 500) -> list[RecordEvent]:
    """Events with a sequence number above ``seq``, oldest first."""
    query = select(RecordEventRow).where(RecordEventRow.seq > seq).order_by(RecordEventRow.seq).limit(limit)
    return [from_row(row) for row in session.execute(query).scalars()]


def latest(session: Session, *, limit: int = 20) -> list[RecordEvent]:
    """The newest ``limit`` events, oldest first (so they read in order)."""
    query = select(RecordEventRow).order_by(RecordEventRow.seq.desc()).limit(limit)
    return [from_row(row) for row in reversed(list(session.execute(query).scalars()))]


def get(session: Session, seq: int) -> RecordEvent | None:
    row = session.get(RecordEventRow, seq)
    return from_row(row) if row is not None else None


def last_before(session: Session, when: datetime) -> int:
    """The sequence number of the last event written before ``when`` (0 if none): replay starts after it."""
    query = select(func.max(RecordEventRow.seq)).where(RecordEventRow.at < when.astimezone(UTC))
    return session.execute(query).scalar_one() or 0


def follow(
    db: Database,
    *,
    after_seq: int,
    poll_seconds: float = 0.5,
    keep_going: Callable[[], bool] = lambda: True,
) -> Iterator[RecordEvent]:
    """New events as they commit, polling the outbox (``events tail --follow``)."""
    last = after_seq
    while keep_going():
        with db.read_session() as session:
            batch = after(session, last)
        yield from batch
        if batch:
            last = batch[-1].seq
        else:
            time.sleep(poll_seconds)


# --- idempotent subscribers ----------------------------------------------------------------------------


def first_delivery(session: Session, subscriber: str, event: RecordEvent) -> bool:
    """True the first time ``subscriber`` sees ``event`` in a committed transaction, False after.

    Call it in the same transaction as the subscriber's own writes: the marker and the effect commit or roll
    back together, so a redelivered event (at-least-once) is applied exactly once.
    """
    if session.get(EventAppliedRow, (subscriber, event.id)) is not None:
        return False
    session.add(EventAppliedRow(subscriber=subscriber, event_id=event.id, applied_at=datetime.now(UTC)))
    session.flush()
    return True
