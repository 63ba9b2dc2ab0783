"""Record events over the NATS JetStream relay: the same subscribers, the same guarantees.

Needs a JetStream server (127.0.0.1:4222, or ``MEDFUSION_TEST_NATS_URL``): skipped when unreachable, a
failure under CI=true (as the PostgreSQL leg is). Each test uses its own stream and subject, deleted after.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import pytest

from medfusion.errors import EventRelayUnavailable, NotFound
from medfusion.record.models import PatientChart
from medfusion.settings import Settings
from medfusion.store import events
from medfusion.store.database import Database
from medfusion.store.event_dispatch import (
    Backoff,
    EventDispatcher,
    SubscriberRegistry,
    failures,
    set_checkpoint,
)
from medfusion.store.event_relay_nats import NatsRelay, consumer_state
from medfusion.store.event_relays import make_relay
from medfusion.store.events import RecordEvent
from medfusion.store.patients import PatientRepository
from tests.store.event_worker import crash_and_recover

NATS_URL_ENV = "MEDFUSION_TEST_NATS_URL"


@pytest.fixture(scope="module")
def nats_url() -> str:
    url = os.environ.get(NATS_URL_ENV, "nats://127.0.0.1:4222")
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 4222), timeout=2).close()
    except OSError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"NATS JetStream at {url} unreachable under CI=true: {exc}")
        pytest.skip(f"NATS at {url} unreachable")
    return url


@pytest.fixture
def stream(nats_url: str) -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:10]
    name, subject = f"MFTEST_{tag}", f"mftest.{tag}"
    yield name, subject

    async def drop() -> None:
        import nats

        nc = await nats.connect(nats_url)
        with contextlib.suppress(Exception):  # a test that never published made no stream
            await nc.jetstream().delete_stream(name)
        await nc.close()

    asyncio.run(drop())


def _relay(
    db: Database, url: str, stream: tuple[str, str], registry: SubscriberRegistry, **kw: object
) -> NatsRelay:
    return NatsRelay(
        db,
        url,
        registry,
        stream=stream[0],
        subject=stream[1],
        ack_wait_seconds=1.0,
        fetch_timeout_seconds=0.3,
        **kw,  # type: ignore[arg-type]
    )


def _all(db: Database) -> list[RecordEvent]:
    with db.read_session() as session:
        return events.after(session, 0, limit=100_000)


def test_settings_choose_the_relay(db: Database, nats_url: str) -> None:
    assert isinstance(make_relay(db, SubscriberRegistry(), Settings()), EventDispatcher)
    relay = make_relay(db, SubscriberRegistry(), Settings(events_relay=nats_url))
    assert isinstance(relay, NatsRelay) and relay.url == nats_url


def test_an_unreachable_server_is_a_typed_error(db: Database) -> None:
    relay = NatsRelay(db, "nats://127.0.0.1:1", SubscriberRegistry())
    with pytest.raises(EventRelayUnavailable):
        relay.run_once()


def test_the_relay_delivers_every_event_to_every_subscriber_with_the_same_handlers(
    db: Database, nats_url: str, stream: tuple[str, str], demo_charts: list[PatientChart]
) -> None:
    with db.session() as session:
        PatientRepository(session).add_many(demo_charts[:4])
    a: list[RecordEvent] = []
    b: list[RecordEvent] = []
    registry = SubscriberRegistry()
    registry.register("a", a.append)
    registry.register("b", b.append)
    relay = _relay(db, nats_url, stream, registry)
    report = relay.run_once()
    written = _all(db)
    assert a == written and b == written and report.delivered == 2 * len(written)
    # a publisher that crashed before moving its checkpoint republishes: JetStream drops the copies
    with db.session() as session:
        set_checkpoint(session, relay.publisher_checkpoint, 0, datetime.now(UTC))
    assert relay.run_once().delivered == 0
    assert a == written and consumer_state(relay, "a") == {"pending": 0, "ack_pending": 0}


def test_a_raising_subscriber_is_nakked_with_backoff_reported_and_blocks_nobody(
    db: Database, nats_url: str, stream: tuple[str, str], demo_charts: list[PatientChart]
) -> None:
    with db.session() as session:
        PatientRepository(session).create(demo_charts[2])
    good: list[RecordEvent] = []
    calls: Counter[int] = Counter()
    healthy = {"on": False}

    def flaky(event: RecordEvent) -> None:
        calls[event.seq] += 1
        if event.type == "observation.recorded" and not healthy["on"]:
            raise ValueError("rule pack not loaded")

    registry = SubscriberRegistry()
    registry.register("flaky", flaky)
    registry.register("good", good.append)
    relay = _relay(db, nats_url, stream, registry, backoff=Backoff(base_seconds=0.2, factor=1))
    first = relay.run_once()
    written = _all(db)
    observations = {e.seq for e in written if e.type == "observation.recorded"}
    assert good == written and first.failed >= len(observations)
    assert set(calls) == {e.seq for e in written}  # later events still reached flaky
    with db.read_session() as session:
        assert {f.event.seq for f in failures(session) if f.subscriber == "flaky"} == observations
    healthy["on"] = True
    for _ in range(20):
        relay.run_once()
        with db.read_session() as session:
            if not failures(session):
                break
    with db.read_session() as session:
        assert failures(session) == []
        assert {f.event.seq for f in failures(session, include_resolved=True)} == observations
    assert all(calls[seq] >= 2 for seq in observations)
    assert consumer_state(relay, "flaky") == {"pending": 0, "ack_pending": 0}


def test_an_unknown_subscriber_is_a_typed_error(db: Database, nats_url: str, stream: tuple[str, str]) -> None:
    relay = _relay(db, nats_url, stream, SubscriberRegistry())
    with pytest.raises(NotFound) as missing:
        relay.run_forever(names=["nobody"])
    assert missing.value.code == "unknown_subscriber"


def test_kill_9_mid_dispatch_over_nats_loses_nothing_and_applies_each_event_once(
    db: Database,
    database_url: str,
    nats_url: str,
    stream: tuple[str, str],
    demo_charts: list[PatientChart],
    tmp_path: Path,
) -> None:
    with db.session() as session:
        PatientRepository(session).add_many(demo_charts[:8])
    expected = {e.id for e in _all(db)}
    extra = ["--nats", nats_url, "--stream", stream[0], "--subject", stream[1]]
    seen, ledger, at_kill = crash_and_recover(db, database_url, tmp_path / "seen.txt", expected, extra)
    assert at_kill < len(expected)
    assert set(seen) == expected
    assert Counter(ledger) == Counter(expected)
