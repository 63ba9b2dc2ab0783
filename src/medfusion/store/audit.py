"""The append-only, hash-chained audit log: who did what to which patient's data, when, and how it ended.

Each entry's ``hash`` is SHA-256 over its own fields and the previous entry's hash, so altering, removing
or reordering any row breaks the chain from that row on; ``audit_head`` records the newest sequence number
and hash, so cutting rows off the end is caught too. Database triggers refuse UPDATE and DELETE on
``audit_log``. Entries carry ids and field names, never names or ID numbers (no PII in the log itself
beyond the patient id that says whose record was touched).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from medfusion.store.tables import AuditHeadRow, AuditRow

GENESIS_HASH = "0" * 64


class Outcome(StrEnum):
    success = "success"
    denied = "denied"
    failed = "failed"
    not_found = "not_found"


@dataclass(frozen=True)
class Actor:
    """Who acts: a signed-in user, or ``cli:<os user>`` with role ``system`` for local commands."""

    username: str
    role: str


class AuditEntry(BaseModel):
    seq: int
    ts: str
    actor: str
    role: str
    action: str
    patient_id: str | None
    outcome: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditVerification(BaseModel):
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str | None = None


def entry_hash(
    *,
    seq: int,
    ts: str,
    actor: str,
    role: str,
    action: str,
    patient_id: str | None,
    outcome: str,
    detail: str,
    prev_hash: str,
) -> str:
    canonical = json.dumps(
        [seq, ts, actor, role, action, patient_id, outcome, detail, prev_hash],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def record(
    session: Session,
    actor: Actor,
    action: str,
    outcome: Outcome | str = Outcome.success,
    *,
    patient_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Append one entry inside the caller's transaction; returns its sequence number."""
    head = session.execute(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()).scalar_one()
    seq = head.seq + 1
    ts = datetime.now(UTC).isoformat(timespec="microseconds")
    detail_text = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    fields: dict[str, Any] = {
        "seq": seq,
        "ts": ts,
        "actor": actor.username,
        "role": actor.role,
        "action": action,
        "patient_id": patient_id,
        "outcome": str(outcome),
        "detail": detail_text,
        "prev_hash": head.hash,
    }
    digest = entry_hash(**fields)
    session.add(AuditRow(**fields, hash=digest))
    head.seq, head.hash = seq, digest
    session.flush()
    return seq


_HASHED = ("seq", "ts", "actor", "role", "action", "patient_id", "outcome", "detail", "prev_hash")


def _hashed_fields(row: AuditRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in _HASHED}


def _entry(row: AuditRow) -> AuditEntry:
    fields = _hashed_fields(row)
    return AuditEntry(**{**fields, "detail": json.loads(row.detail)}, hash=row.hash)


def entries(
    session: Session,
    *,
    patient_id: str | None = None,
    actor: str | None = None,
    after_seq: int = 0,
    limit: int = 100,
) -> list[AuditEntry]:
    query = select(AuditRow).where(AuditRow.seq > after_seq).order_by(AuditRow.seq).limit(limit)
    if patient_id is not None:
        query = query.where(AuditRow.patient_id == patient_id)
    if actor is not None:
        query = query.where(AuditRow.actor == actor)
    return [_entry(row) for row in session.execute(query).scalars()]


def latest(session: Session, *, patient_id: str | None = None, limit: int = 200) -> list[AuditEntry]:
    """The newest entries first."""
    query = select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit)
    if patient_id is not None:
        query = query.where(AuditRow.patient_id == patient_id)
    return [_entry(row) for row in session.execute(query).scalars()]


def _rows(session: Session, batch: int = 5000) -> Iterator[AuditRow]:
    last = -1
    while True:
        rows = list(
            session.execute(
                select(AuditRow).where(AuditRow.seq > last).order_by(AuditRow.seq).limit(batch)
            ).scalars()
        )
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def verify(session: Session) -> AuditVerification:
    """Walk the whole chain; report the first entry that was altered, removed or moved."""
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    for row in _rows(session):
        count += 1
        if row.seq != expected_seq:
            return AuditVerification(
                ok=False,
                entries=count,
                first_bad_seq=expected_seq,
                reason=f"条目缺失或顺序被改动 entry {expected_seq} missing or moved (found {row.seq})",
            )
        if row.prev_hash != prev_hash:
            return AuditVerification(
                ok=False,
                entries=count,
                first_bad_seq=row.seq,
                reason="前序哈希不符 prev_hash does not match the previous entry",
            )
        if entry_hash(**_hashed_fields(row)) != row.hash:
            return AuditVerification(
                ok=False,
                entries=count,
                first_bad_seq=row.seq,
                reason="条目内容被改动 entry content altered (hash mismatch)",
            )
        prev_hash, expected_seq = row.hash, expected_seq + 1
    head = session.execute(select(AuditHeadRow).where(AuditHeadRow.id == 1)).scalar_one()
    if head.seq != expected_seq - 1 or head.hash != prev_hash:
        return AuditVerification(
            ok=False,
            entries=count,
            first_bad_seq=expected_seq,
            reason=f"链尾被截断 chain truncated: head says {head.seq} entries, found {expected_seq - 1}",
        )
    return AuditVerification(ok=True, entries=count)
