"""``medfusion events`` — read the record-event outbox, see failed deliveries, re-deliver to a subscriber."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from medfusion.apps import registry
from medfusion.errors import InvalidInput
from medfusion.record.clinical_time import aware
from medfusion.store import audit, events
from medfusion.store.access import system_principal
from medfusion.store.database import get_database
from medfusion.store.event_dispatch import EventDispatcher, EventFailure, failures, subscribers
from medfusion.store.event_relays import make_relay
from medfusion.store.events import RecordEvent

app = typer.Typer(help="病历事件 record events: outbox, failures, replay", no_args_is_help=True)


def _line(event: RecordEvent, as_json: bool) -> str:
    if as_json:
        return json.dumps(event.model_dump(mode="json"), ensure_ascii=False)
    return (
        f"{event.seq:>8} {event.time:%Y-%m-%d %H:%M:%S}Z {event.type:<24} {event.patient:<16} "
        f"{event.resource} {event.payload_hash[:12]}"
    )


def _failure_line(failure: EventFailure, as_json: bool) -> str:
    if as_json:
        return json.dumps(failure.model_dump(mode="json"), ensure_ascii=False)
    e = failure.event
    return (
        f"{failure.subscriber:<16} {e.seq:>8} {e.type:<24} {e.resource} attempts={failure.attempts} "
        f"next={failure.next_retry_at:%Y-%m-%d %H:%M:%S}Z {failure.last_error}"
    )


@app.command("tail")
def tail(
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines 输出")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="最近多少条")] = 20,
    follow: Annotated[bool, typer.Option("--follow", help="持续输出新事件（Ctrl-C 结束）")] = False,
    failed: Annotated[bool, typer.Option("--failed", help="列出投递失败、待重试的事件")] = False,
    poll_seconds: Annotated[float, typer.Option(min=0.05, max=60, hidden=True)] = 0.5,
) -> None:
    """最新事件 The latest record events, oldest first; ``--follow`` streams new ones as they commit."""
    db = get_database()
    with db.read_session() as session:
        if failed:
            parked = failures(session, limit=limit)
        else:
            latest = events.latest(session, limit=limit)
    with db.session() as session:
        audit.record(
            session,
            system_principal().actor,
            "events.failed" if failed else "events.tail",
            detail={"limit": limit, "follow": follow},
        )
    if failed:
        for failure in parked:
            typer.echo(_failure_line(failure, as_json))
        return
    for event in latest:
        typer.echo(_line(event, as_json))
    if not follow:
        return
    with db.read_session() as session:
        last = latest[-1].seq if latest else events.head(session)
    try:
        for event in events.follow(db, after_seq=last, poll_seconds=poll_seconds):
            typer.echo(_line(event, as_json))
    except KeyboardInterrupt:
        return


@app.command("replay")
def replay(
    since: Annotated[str, typer.Option(help="ISO 时间，如 2025-06-30T08:00+08:00（无时区按上海时间）")],
    subscriber: Annotated[str, typer.Option(help="订阅者名称")],
) -> None:
    """重新投递 Deliver again every event written at or after ``--since`` to one subscriber."""
    try:
        when = aware(datetime.fromisoformat(since))
    except ValueError:
        raise InvalidInput.for_field(
            "--since", f"不是 ISO 8601 时间 not an ISO 8601 time: {since!r}"
        ) from None
    db = get_database()
    registry.install_subscribers()
    subscribers.get(subscriber)  # unknown names fail before anything is audited as done
    report = EventDispatcher(db, subscribers).replay(subscriber, when)
    with db.session() as session:
        audit.record(
            session,
            system_principal().actor,
            "events.replay",
            detail={"subscriber": subscriber, "since": when.isoformat(), **report.model_dump()},
        )
    typer.echo(
        f"已重新投递 replayed {report.delivered} event(s) to {subscriber}; {report.failed} failed "
        "(see events tail --failed)"
    )


@app.command("dispatch")
def dispatch(
    once: Annotated[
        bool, typer.Option("--once", help="投递完积压后退出 deliver what is due, then exit")
    ] = False,
    poll_seconds: Annotated[float, typer.Option(min=0.05, max=60, help="轮询间隔（秒）")] = 0.5,
) -> None:
    """投递事件 Run the installed apps' subscribers over the outbox (embedded dispatcher, or the NATS relay
    when MEDFUSION_EVENTS_RELAY is set) — a worker beside the API, or a catch-up run with ``--once``."""
    db = get_database()
    names = registry.install_subscribers()
    relay = make_relay(db)
    with db.session() as session:
        audit.record(
            session, system_principal().actor, "events.dispatch", detail={"subscribers": names, "once": once}
        )
    if once:
        report = relay.run_once()
        typer.echo(json.dumps({"subscribers": names, **report.model_dump()}, ensure_ascii=False))
        return
    typer.echo(f"投递中 dispatching to {', '.join(names) or '(no subscribers)'}; Ctrl-C 结束", err=True)
    try:
        relay.run_forever(poll_seconds=poll_seconds)
    except KeyboardInterrupt:
        return
