"""The append-only, hash-chained audit log: who did what to which patient's data, when, and how it ended.

Each entry's ``hash`` is SHA-256 over its own fields and the previous entry's hash, so altering, removing
or reordering any row breaks the chain from that row on; ``audit_head`` records the newest sequence number
and hash, so cutting rows off the end is caught too. Database triggers refuse UPDATE and DELETE on
``audit_log``.

One chain, however many processes append to it: an append reads the head row under a lock held to the end
of its transaction — ``SELECT … FOR UPDATE`` on PostgreSQL (a second worker waits for the first to commit,
then reads the head it wrote), the database write lock on SQLite (every write transaction begins
``BEGIN IMMEDIATE``, see ``store/database``). The head then advances only from the sequence number it was
read at (``UPDATE … WHERE seq = <read>``) and the entry's ``seq`` is the primary key, so an append that
somehow ran without the lock fails instead of forking the chain. Appends are plain Core statements (one
SELECT, one INSERT, one UPDATE), not ORM unit-of-work objects: they run on every request.

Entries carry ids and field names, never names or ID numbers (no PII in the log itself beyond the patient
id that says whose record was touched).
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

from pydantic import BaseModel, Field
from sqlalchemy import CursorResult, Select, Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from medfusion.store.database import Database
from medfusion.store.tables import AuditHeadRow, AuditRow

GENESIS_HASH = "0" * 64

_HEAD = cast(Table, AuditHeadRow.__table__)
_LOG = cast(Table, AuditRow.__table__)
_READ_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)
_LOCK_HEAD = _READ_HEAD.with_for_update()
_APPEND = insert(_LOG)
_ADVANCE = (
    update(_HEAD)
    .where(_HEAD.c.id == 1, _HEAD.c.seq == bindparam("read_seq"))
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)


class AuditChainContention(RuntimeError):
    """The head moved between reading and advancing it: the append ran without the chain's lock."""


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
    ts: str = Field(description="When, in UTC (ISO 8601); pages and the CLI show it in the display zone")
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
    return _append(session, [(actor, action, outcome, patient_id, detail)])[0]


_Entry = tuple[Actor, str, "Outcome | str", str | None, dict[str, Any] | None]


def _append(session: Session, entries: list[_Entry]) -> list[int]:
    """Chain ``entries`` onto the head in this transaction: one locked head read, one multi-row INSERT,
    one head UPDATE, however many entries."""
    head_seq, head_hash = session.execute(_LOCK_HEAD).one()
    rows: list[dict[str, Any]] = []
    seq, prev_hash = int(head_seq), str(head_hash)
    for actor, action, outcome, patient_id, detail in entries:
        seq += 1
        fields: dict[str, Any] = {
            "seq": seq,
            "ts": datetime.now(UTC).isoformat(timespec="microseconds"),
            "actor": actor.username,
            "role": actor.role,
            "action": action,
            "patient_id": patient_id,
            "outcome": str(outcome),
            "detail": json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
            "prev_hash": prev_hash,
        }
        prev_hash = entry_hash(**fields)
        rows.append({**fields, "hash": prev_hash})
    session.execute(_APPEND, rows)
    advanced = session.execute(_ADVANCE, {"read_seq": head_seq, "new_seq": seq, "new_hash": prev_hash})
    if not isinstance(advanced, CursorResult) or advanced.rowcount != 1:
        raise AuditChainContention(f"audit head moved past {head_seq} while entry {seq} was appended")
    session.flush()  # the caller's pending work meets its constraints here, before the commit
    return [int(row["seq"]) for row in rows]


@dataclass
class _Pending:
    actor: Actor
    action: str
    outcome: Outcome | str
    patient_id: str | None
    detail: dict[str, Any] | None
    seq: int | None = None
    error: BaseException | None = None
    done: bool = False
    lead: bool = False  # handed the next batch by the writer before it
    wake: threading.Event = field(default_factory=threading.Event)


class GroupAppender:
    """Entries that need no transaction of their own work (reads), appended in batches — group commit.

    A caller's entry waits in a queue; the caller that finds no batch being written leads: it writes every
    waiting entry in one transaction (one head lock, one commit), wakes exactly the callers whose entries
    that batch committed, and hands the lead to the oldest entry still waiting, if any. ``append`` returns
    only once its entry is committed, and raises if the batch failed, so no data leaves without its entry;
    under concurrency N reads cost one lock and one commit instead of N, which is what held the chain head
    (and on SQLite, the one writer) per request. Order in the chain is arrival order.

    Each waiter sleeps on its own event: waking every waiter after every batch (one shared condition) cost
    up to 40 thread wake-ups per commit under load, most of which only went back to sleep (py-spy, issue
    15 part 7)."""

    def __init__(self, db: Database, max_batch: int = 256) -> None:
        self._db = db
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._writing = False

    def append(
        self,
        actor: Actor,
        action: str,
        outcome: Outcome | str = Outcome.success,
        *,
        patient_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        mine = _Pending(actor, action, outcome, patient_id, detail)
        with self._lock:
            self._queue.append(mine)
            if not self._writing:
                self._writing = mine.lead = True
        while not mine.lead:
            mine.wake.wait()
            mine.wake.clear()
            if mine.done:
                return self._result(mine)
        self._lead()
        return self._result(mine)

    @staticmethod
    def _result(mine: _Pending) -> int:
        if mine.error is not None:
            raise mine.error
        assert mine.seq is not None
        return mine.seq

    def _lead(self) -> None:
        """Write one batch (this caller's entry is in it: the queue is in arrival order and the lead goes
        to its oldest entry), wake its callers, pass the lead on."""
        with self._lock:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
        try:
            self._commit(batch)
            if len(batch) > 1 and any(p.error is not None for p in batch):
                for pending in batch:  # one bad entry must not fail its neighbours: each alone
                    self._commit([pending])
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._writing = False
                else:
                    successor.lead = True
            for pending in batch:
                pending.done = True
                pending.wake.set()
            if successor is not None:
                successor.wake.set()

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            with self._db.session() as session:
                seqs = _append(
                    session, [(p.actor, p.action, p.outcome, p.patient_id, p.detail) for p in batch]
                )
        except Exception as exc:  # every entry of the batch reports it
            for pending in batch:
                pending.seq, pending.error = None, exc
            return
        for pending, seq in zip(batch, seqs, strict=True):
            pending.seq, pending.error = seq, None


_appenders: weakref.WeakKeyDictionary[Database, GroupAppender] = weakref.WeakKeyDictionary()
_appenders_lock = threading.Lock()


def append(
    db: Database,
    actor: Actor,
    action: str,
    outcome: Outcome | str = Outcome.success,
    *,
    patient_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Append one entry in a transaction of its own, batched with concurrent ones (:class:`GroupAppender`);
    returns its sequence number once committed. For entries whose work wrote nothing (reads): an entry
    that must commit or fail together with a write goes through :func:`record` in that write's session."""
    with _appenders_lock:
        appender = _appenders.get(db)
        if appender is None:
            appender = _appenders[db] = GroupAppender(db)
    return appender.append(actor, action, outcome, patient_id=patient_id, detail=detail)


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
    query: AuditQuery | None = None,
) -> list[AuditEntry]:
    """Entries after ``after_seq``, oldest first (a reader following the log), filtered by ``query``."""
    q = (query or AuditQuery()).model_copy(
        update={k: v for k, v in {"patient_id": patient_id, "actor": actor}.items() if v is not None}
    )
    found = _filtered(select(AuditRow), q).where(AuditRow.seq > after_seq).order_by(AuditRow.seq).limit(limit)
    return [_entry(row) for row in session.execute(found).scalars()]


def latest(session: Session, *, patient_id: str | None = None, limit: int = 200) -> list[AuditEntry]:
    """The newest entries first."""
    query = select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit)
    if patient_id is not None:
        query = query.where(AuditRow.patient_id == patient_id)
    return [_entry(row) for row in session.execute(query).scalars()]


class AuditQuery(BaseModel):
    """Filters for reading the log (API, CLI, the audit page, exports). ``action`` is one action
    (``auth.login``) or, ending in ``.``, every action under it (``user.``); ``since`` / ``until`` are
    aware instants (entries are stored in UTC), ``until`` exclusive."""

    actor: str | None = None
    action: str | None = None
    patient_id: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def active(self) -> dict[str, str]:
        """The filters in use, as text (for the audit entry that records a read or an export)."""
        return {k: (v.isoformat() if isinstance(v, datetime) else str(v)) for k, v in self if v is not None}


def _stamp(value: datetime) -> str:
    # entries' ``ts`` are ISO 8601 in UTC with microseconds, so they order as text
    aware_value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware_value.astimezone(UTC).isoformat(timespec="microseconds")


def _filtered(query: Select[AuditRow], q: AuditQuery) -> Select[AuditRow]:
    if q.actor:
        query = query.where(AuditRow.actor == q.actor)
    if q.action:
        if q.action.endswith("."):
            query = query.where(AuditRow.action.startswith(q.action, autoescape=True))
        else:
            query = query.where(AuditRow.action == q.action)
    if q.patient_id:
        query = query.where(AuditRow.patient_id == q.patient_id)
    if q.outcome:
        query = query.where(AuditRow.outcome == q.outcome)
    if q.since is not None:
        query = query.where(AuditRow.ts >= _stamp(q.since))
    if q.until is not None:
        query = query.where(AuditRow.ts < _stamp(q.until))
    return query


def search(
    session: Session, q: AuditQuery, *, limit: int = 200, before_seq: int | None = None
) -> list[AuditEntry]:
    """Entries matching ``q``, newest first; ``before_seq`` pages back from an entry."""
    query = _filtered(select(AuditRow), q).order_by(AuditRow.seq.desc()).limit(limit)
    if before_seq is not None:
        query = query.where(AuditRow.seq < before_seq)
    return [_entry(row) for row in session.execute(query).scalars()]


def count(session: Session, q: AuditQuery) -> int:
    found = session.execute(
        _filtered(select(AuditRow), q).with_only_columns(func.count(), maintain_column_froms=True)
    ).scalar()
    return int(found or 0)


def matching(
    session: Session, q: AuditQuery, batch: int = 5000, upto: int | None = None
) -> Iterator[AuditEntry]:
    """Every entry matching ``q``, oldest first, read in batches (exports of any size); ``upto``: only
    entries up to that sequence number (the log as it stood when an export was counted)."""
    last = 0
    while True:
        query = _filtered(select(AuditRow), q).where(AuditRow.seq > last)
        if upto is not None:
            query = query.where(AuditRow.seq <= upto)
        rows = list(session.execute(query.order_by(AuditRow.seq).limit(batch)).scalars())
        if not rows:
            return
        for row in rows:
            yield _entry(row)
        last = rows[-1].seq
        session.expunge_all()


def head_seq(session: Session) -> int:
    """The newest entry's sequence number (0 for an empty log)."""
    return int(session.execute(_READ_HEAD).one()[0])


def action_names(session: Session) -> list[str]:
    """The actions the log holds, for a filter's choices."""
    return sorted(str(a) for a in session.execute(select(AuditRow.action).distinct()).scalars())


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
    head_seq, head_hash = session.execute(_READ_HEAD).one()
    if head_seq != expected_seq - 1 or head_hash != prev_hash:
        return AuditVerification(
            ok=False,
            entries=count,
            first_bad_seq=expected_seq,
            reason=f"链尾被截断 chain truncated: head says {head_seq} entries, found {expected_seq - 1}",
        )
    return AuditVerification(ok=True, entries=count)
