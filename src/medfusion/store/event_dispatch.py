"""Delivering record events to subscribers: at least once, a checkpoint per subscriber, failures retried.

A subscriber is a name and a callable taking one :class:`RecordEvent`. The embedded dispatcher reads the
outbox after each subscriber's checkpoint and calls the handler; the checkpoint moves only past events whose
handler has returned (or whose failure has been recorded), in its own transaction every ``checkpoint_every``
events, so a crash at any point redelivers (at most that many) and never loses. A handler that raises
parks that event in ``event_failures`` — retried with exponential backoff, listed by ``medfusion events
tail --failed`` — and the subscriber goes on with the next event, so one bad event blocks neither that
subscriber's later events nor any other subscriber. Parked events are the one exception to sequence order;
subscribers that need exactly-once effects use :func:`medfusion.store.events.first_delivery`.

The handler runs outside any dispatcher transaction (on SQLite an open write transaction would lock the
handler's own writes out). Run one dispatcher per database; to scale out, set ``MEDFUSION_EVENTS_RELAY`` to
a NATS JetStream server and run subscriber workers (``event_relay_nats.py``) with the same handlers.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from medfusion.errors import InvalidInput, NotFound
from medfusion.store import events
from medfusion.store.database import Database
from medfusion.store.events import RecordEvent
from medfusion.store.tables import EventCheckpointRow, EventFailureRow, RecordEventRow

log = logging.getLogger(__name__)

Handler = Callable[[RecordEvent], None]
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")  # also a valid JetStream durable consumer name


class SubscriberRegistry:
    """Subscribers by name. Apps and the rule engine register theirs; the dispatcher never changes."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, name: str, handler: Handler) -> None:
        if not _NAME.match(name):
            raise InvalidInput.for_field("subscriber", "名称只能包含字母、数字、'-'、'_' (1–80 characters)")
        if name in self._handlers and self._handlers[name] is not handler:
            raise InvalidInput.for_field("subscriber", f"订阅者已注册 subscriber {name!r} already registered")
        self._handlers[name] = handler

    def unregister(self, name: str) -> None:
        self._handlers.pop(name, None)

    def get(self, name: str) -> Handler:
        handler = self._handlers.get(name)
        if handler is None:
            raise NotFound(
                f"未知的订阅者 unknown subscriber {name!r}",
                details={"subscriber": name, "known": sorted(self._handlers)},
                code="unknown_subscriber",
            )
        return handler

    def names(self) -> list[str]:
        return sorted(self._handlers)

    def __iter__(self) -> Iterator[tuple[str, Handler]]:
        return iter(sorted(self._handlers.items()))


subscribers = SubscriberRegistry()
"""The process-wide registry: ``subscribers.register("rules", engine.on_event)``."""


@dataclass(frozen=True)
class Backoff:
    """Delay before retry n (1-based): ``base × factor^(n−1)``, capped."""

    base_seconds: float = 2.0
    factor: float = 2.0
    cap_seconds: float = 3600.0

    def delay(self, attempts: int) -> float:
        return float(min(self.cap_seconds, self.base_seconds * self.factor ** max(0, attempts - 1)))


class DispatchReport(BaseModel):
    delivered: int = 0
    failed: int = 0
    retried: int = 0
    recovered: int = 0

    def add(self, other: DispatchReport) -> None:
        self.delivered += other.delivered
        self.failed += other.failed
        self.retried += other.retried
        self.recovered += other.recovered


class EventFailure(BaseModel):
    subscriber: str
    event: RecordEvent
    attempts: int
    last_error: str
    first_failed_at: datetime
    next_retry_at: datetime
    resolved_at: datetime | None = None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def record_failure(
    session: Session,
    subscriber: str,
    event: RecordEvent,
    error: BaseException,
    backoff: Backoff,
    now: datetime,
    *,
    attempts: int | None = None,
) -> EventFailureRow:
    """Park (or re-park) an event a subscriber raised on; ``attempts`` overrides the counter (NATS knows)."""
    row = session.get(EventFailureRow, (subscriber, event.seq))
    if row is None:
        row = EventFailureRow(
            subscriber=subscriber,
            event_seq=event.seq,
            attempts=0,
            last_error="",
            first_failed_at=now,
            last_failed_at=now,
            next_retry_at=now,
        )
        session.add(row)
    row.attempts = attempts if attempts is not None else row.attempts + 1
    row.last_error = error_text(error)
    row.last_failed_at = now
    row.next_retry_at = now + timedelta(seconds=backoff.delay(row.attempts))
    row.resolved_at = None
    session.flush()
    # ids and the exception type only: a message could quote the record
    log.warning(
        "subscriber %s failed on event %d (%s), attempt %d",
        subscriber,
        event.seq,
        type(error).__name__,
        row.attempts,
    )
    return row


def resolve_failure(session: Session, subscriber: str, seq: int, now: datetime) -> bool:
    row = session.get(EventFailureRow, (subscriber, seq))
    if row is None or row.resolved_at is not None:
        return False
    row.resolved_at = now
    return True


def failures(session: Session, *, include_resolved: bool = False, limit: int = 100) -> list[EventFailure]:
    """Parked events, the most recently failed first."""
    query = (
        select(EventFailureRow, RecordEventRow)
        .join(RecordEventRow, RecordEventRow.seq == EventFailureRow.event_seq)
        .order_by(EventFailureRow.last_failed_at.desc(), EventFailureRow.event_seq.desc())
        .limit(limit)
    )
    if not include_resolved:
        query = query.where(EventFailureRow.resolved_at.is_(None))
    out = []
    for failure, row in session.execute(query).all():
        out.append(
            EventFailure(
                subscriber=failure.subscriber,
                event=events.from_row(row),
                attempts=failure.attempts,
                last_error=failure.last_error,
                first_failed_at=_aware(failure.first_failed_at),
                next_retry_at=_aware(failure.next_retry_at),
                resolved_at=_aware(failure.resolved_at) if failure.resolved_at else None,
            )
        )
    return out


def checkpoint(session: Session, name: str) -> int:
    row = session.get(EventCheckpointRow, name)
    return row.seq if row is not None else 0


def set_checkpoint(session: Session, name: str, seq: int, now: datetime) -> None:
    row = session.get(EventCheckpointRow, name)
    if row is None:
        session.add(EventCheckpointRow(subscriber=name, seq=seq, updated_at=now))
    else:
        row.seq, row.updated_at = seq, now
    session.flush()


class EventRelay(Protocol):
    """What runs the subscribers: the embedded dispatcher or the NATS relay, chosen by settings."""

    def run_once(self) -> DispatchReport: ...

    def run_forever(self, stop: threading.Event | None = None, poll_seconds: float = 0.5) -> None: ...


@dataclass
class EventDispatcher:
    """The embedded default: in-process delivery over the database outbox."""

    db: Database
    registry: SubscriberRegistry = field(default_factory=lambda: subscribers)
    batch: int = 200
    checkpoint_every: int = 20  # a crash redelivers at most this many events per subscriber
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def run_once(self) -> DispatchReport:
        """Due retries, then every event past each checkpoint until all are caught up — one batch per
        subscriber in turn, so a slow subscriber delays the others by at most a batch."""
        report = DispatchReport()
        active = list(self.registry)
        for name, handler in active:
            report.add(self._retry_due(name, handler))
        while active:
            behind = []
            for name, handler in active:
                step = self._deliver_batch(name, handler)
                report.add(step)
                if step.delivered + step.failed >= self.batch:
                    behind.append((name, handler))
            active = behind
        return report

    def run_forever(self, stop: threading.Event | None = None, poll_seconds: float = 0.5) -> None:
        stop = stop or threading.Event()
        while not stop.is_set():
            report = self.run_once()
            if report.delivered + report.failed + report.retried == 0:
                stop.wait(poll_seconds)

    def replay(self, name: str, since: datetime) -> DispatchReport:
        """Deliver again every event written at or after ``since`` to one subscriber; its checkpoint stays."""
        handler = self.registry.get(name)
        report = DispatchReport()
        with self.db.read_session() as session:
            last = events.last_before(session, since)
        while True:
            with self.db.read_session() as session:
                batch = events.after(session, last, limit=self.batch)
            for event in batch:
                report.add(self._deliver(name, handler, event))
            if len(batch) < self.batch:
                return report
            last = batch[-1].seq

    # --- internals --------------------------------------------------------------------------
    def _deliver_batch(self, name: str, handler: Handler) -> DispatchReport:
        with self.db.read_session() as session:
            batch = events.after(session, checkpoint(session, name), limit=self.batch)
        report = DispatchReport()
        unsaved = 0  # delivered since the checkpoint was last written
        for event in batch:
            try:
                handler(event)
            except Exception as error:
                with self.db.session() as session:
                    record_failure(session, name, event, error, self.backoff, self.clock())
                    set_checkpoint(session, name, event.seq, self.clock())
                report.failed += 1
                unsaved = 0
                continue
            report.delivered += 1
            unsaved += 1
            if unsaved >= self.checkpoint_every:
                self._save(name, event.seq)
                unsaved = 0
        if unsaved:
            self._save(name, batch[-1].seq)
        return report

    def _save(self, name: str, seq: int) -> None:
        with self.db.session() as session:
            set_checkpoint(session, name, seq, self.clock())

    def _deliver(self, name: str, handler: Handler, event: RecordEvent) -> DispatchReport:
        """One delivery outside the checkpoint (replay)."""
        try:
            handler(event)
        except Exception as error:
            with self.db.session() as session:
                record_failure(session, name, event, error, self.backoff, self.clock())
            return DispatchReport(failed=1)
        return DispatchReport(delivered=1)

    def _retry_due(self, name: str, handler: Handler) -> DispatchReport:
        now = self.clock()
        with self.db.read_session() as session:
            due = list(
                session.execute(
                    select(RecordEventRow)
                    .join(EventFailureRow, EventFailureRow.event_seq == RecordEventRow.seq)
                    .where(
                        EventFailureRow.subscriber == name,
                        EventFailureRow.resolved_at.is_(None),
                        EventFailureRow.next_retry_at <= now,
                    )
                    .order_by(RecordEventRow.seq)
                    .limit(self.batch)
                ).scalars()
            )
            pending = [events.from_row(row) for row in due]
        report = DispatchReport()
        for event in pending:
            report.retried += 1
            try:
                handler(event)
            except Exception as error:
                with self.db.session() as session:
                    record_failure(session, name, event, error, self.backoff, self.clock())
                continue
            with self.db.session() as session:
                resolve_failure(session, name, event.seq, self.clock())
            report.recovered += 1
        return report
