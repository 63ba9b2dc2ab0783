"""Record events: what the outbox costs each record write, and how fast events reach subscribers.

Append overhead: the same synthetic charts written twice into fresh databases — once as shipped, once with
``events.chart_changes`` / ``events.append`` patched to no-ops (benchmark only: production code has no
switch to turn events off) — one chart per transaction through ``PatientRepository.create`` (as the API
writes), and in batches of 500 through ``add_many`` (as ``synth --into-db`` and ``demo seed`` do).
Dispatch: the outbox of those charts delivered to one no-op subscriber by the embedded dispatcher, and
through the NATS JetStream relay (publish, then consume), events per second.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any
from unittest import mock

from medfusion.record.models import PatientChart
from medfusion.store import events
from medfusion.store.database import Database
from medfusion.store.event_dispatch import EventDispatcher, SubscriberRegistry
from medfusion.store.patients import PatientRepository
from medfusion.synth import generate_population

SINGLE = 200  # charts written one per transaction
BULK = 2000  # charts written 500 per transaction
NATS_URL = os.environ.get("MEDFUSION_TEST_NATS_URL", "nats://127.0.0.1:4222")


@contextmanager
def _events_off() -> Iterator[None]:
    with (
        mock.patch.object(events, "chart_changes", lambda old, new: []),
        mock.patch.object(events, "append", lambda session, drafts, at=None: 0),
    ):
        yield


def _fresh(url_factory: Callable[[], tuple[str, Callable[[], None]]]) -> tuple[Database, Callable[[], None]]:
    url, drop = url_factory()
    db = Database(url)
    db.upgrade()
    return db, drop


def _write_rates(
    url_factory: Callable[[], tuple[str, Callable[[], None]]], charts: list[PatientChart]
) -> dict[str, Any]:
    single, bulk = charts[:SINGLE], charts[SINGLE : SINGLE + BULK]
    out: dict[str, Any] = {}
    for label, off in (("with_events", False), ("without_events", True)):
        db, drop = _fresh(url_factory)
        try:
            with _events_off() if off else nullcontext():
                per_write = []
                for chart in single:
                    started = time.perf_counter()
                    with db.session() as session:
                        PatientRepository(session).create(chart)
                    per_write.append(time.perf_counter() - started)
                started = time.perf_counter()
                for i in range(0, len(bulk), 500):
                    with db.session() as session:
                        PatientRepository(session).add_many(bulk[i : i + 500])
                bulk_s = time.perf_counter() - started
            with db.read_session() as session:
                count = events.count(session)
        finally:
            db.dispose()
            drop()
        out[label] = {
            "create_ms_median": round(statistics.median(per_write) * 1000, 3),
            "bulk_charts_per_s": round(len(bulk) / bulk_s, 1),
            "events": count,
        }
    on, off = out["with_events"], out["without_events"]
    single_events = sum(len(events.chart_changes(None, c)) for c in single)
    out["create_overhead_ms"] = round(on["create_ms_median"] - off["create_ms_median"], 3)
    out["create_overhead_pct"] = round(100 * out["create_overhead_ms"] / off["create_ms_median"], 1)
    out["events_per_create"] = round(single_events / len(single), 1)
    out["bulk_overhead_pct"] = round(100 * (off["bulk_charts_per_s"] / on["bulk_charts_per_s"] - 1), 1)
    return out


def _sqlite_factory(folder: str) -> Callable[[], tuple[str, Callable[[], None]]]:
    def make() -> tuple[str, Callable[[], None]]:
        return f"sqlite:///{folder}/{uuid.uuid4().hex[:8]}.db", lambda: None

    return make


def _pg_factory(base: str) -> Callable[[], tuple[str, Callable[[], None]]]:
    from benchmarks import population

    def make() -> tuple[str, Callable[[], None]]:
        url, name = population.create_pg(base)
        return url, lambda: population.drop_pg(base, name)

    return make


def _nats_up() -> bool:
    from urllib.parse import urlparse

    parsed = urlparse(NATS_URL)
    try:
        socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 4222), timeout=2).close()
    except OSError:
        return False
    return True


def _dispatch_rates(db: Database) -> dict[str, Any]:
    with db.read_session() as session:
        total = events.count(session)
    out: dict[str, Any] = {"events": total}
    registry = SubscriberRegistry()
    registry.register("noop", lambda event: None)
    started = time.perf_counter()
    report = EventDispatcher(db, registry, batch=500).run_once()
    out["in_process_events_per_s"] = round(report.delivered / (time.perf_counter() - started), 1)
    if not _nats_up():
        out["nats"] = "skipped: no JetStream server at " + NATS_URL
        return out
    from medfusion.store.event_relay_nats import NatsRelay

    tag = uuid.uuid4().hex[:8]
    relay = NatsRelay(db, NATS_URL, registry, stream=f"MFBENCH_{tag}", subject=f"mfbench.{tag}", batch=500)
    try:
        started = time.perf_counter()
        published = relay.publish_pending()
        publish_s = time.perf_counter() - started
        started = time.perf_counter()
        consumed = relay.run_once()
        consume_s = time.perf_counter() - started
    finally:

        async def drop() -> None:
            import nats

            nc = await nats.connect(NATS_URL)
            await nc.jetstream().delete_stream(relay.stream)
            await nc.close()

        asyncio.run(drop())
    out["nats_publish_events_per_s"] = round(published / publish_s, 1)
    out["nats_consume_events_per_s"] = round(consumed.delivered / consume_s, 1)
    out["nats_end_to_end_events_per_s"] = round(published / (publish_s + consume_s), 1)
    return out


def run() -> dict[str, Any]:
    charts = list(generate_population(SINGLE + BULK, seed=11))
    out: dict[str, Any] = {"single_writes": SINGLE, "bulk_charts": BULK}
    with tempfile.TemporaryDirectory() as folder:
        out["append_sqlite"] = _write_rates(_sqlite_factory(folder), charts)
        db, _ = _fresh(_sqlite_factory(folder))
        with db.session() as session:
            PatientRepository(session).add_many(charts[:400])
        out["dispatch_sqlite"] = _dispatch_rates(db)
        db.dispose()
    pg = os.environ.get("MEDFUSION_TEST_PG_URL")
    if pg:
        out["append_postgresql"] = _write_rates(_pg_factory(pg), charts)
        db, drop = _fresh(_pg_factory(pg))
        try:
            with db.session() as session:
                PatientRepository(session).add_many(charts[:400])
            out["dispatch_postgresql"] = _dispatch_rates(db)
        finally:
            db.dispose()
            drop()
    return out
