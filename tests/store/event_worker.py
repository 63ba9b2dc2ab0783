"""A dispatcher process for the kill -9 tests (``python -m tests.store.event_worker …``).

Two subscribers: ``seen`` appends each delivered event id to a file (at least once: a redelivery after a
crash appends it again), ``ledger`` writes one row per event into ``test_ledger`` guarded by
``first_delivery`` in the same transaction (so a redelivery applies nothing). Both sleep a little per event
so that the test's SIGKILL lands in the middle of dispatch.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from medfusion.store.database import Database
from medfusion.store.event_dispatch import EventDispatcher, EventRelay, SubscriberRegistry
from medfusion.store.events import RecordEvent, first_delivery

LEDGER_DDL = "CREATE TABLE IF NOT EXISTS test_ledger (event_id VARCHAR(32) NOT NULL)"


def subscribers_for(db: Database, seen_file: str, pause: float) -> SubscriberRegistry:
    registry = SubscriberRegistry()

    def seen(event: RecordEvent) -> None:
        with open(seen_file, "a", encoding="utf-8") as fh:
            fh.write(event.id + "\n")
        time.sleep(pause)

    def ledger(event: RecordEvent) -> None:
        time.sleep(pause)
        with db.session() as session:
            if first_delivery(session, "ledger", event):
                session.execute(text("INSERT INTO test_ledger (event_id) VALUES (:e)"), {"e": event.id})

    registry.register("seen", seen)
    registry.register("ledger", ledger)
    return registry


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("seen_file")
    parser.add_argument("--nats")
    parser.add_argument("--stream", default="MEDFUSION_EVENTS")
    parser.add_argument("--subject", default="medfusion.events")
    parser.add_argument("--pause", type=float, default=0.01)
    args = parser.parse_args()
    db = Database(args.database_url)
    registry = subscribers_for(db, args.seen_file, args.pause)
    relay: EventRelay
    if args.nats:
        from medfusion.store.event_relay_nats import NatsRelay

        relay = NatsRelay(
            db,
            args.nats,
            registry,
            stream=args.stream,
            subject=args.subject,
            ack_wait_seconds=1.0,
            batch=10,
            fetch_timeout_seconds=0.2,
        )
    else:
        relay = EventDispatcher(db, registry, batch=10)
    relay.run_forever(poll_seconds=0.05)


if __name__ == "__main__":
    main()


# --- the test side ----------------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def _ledger(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.execute(text("SELECT event_id FROM test_ledger")).scalars())


def _wait(condition: Callable[[], bool], process: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"worker exited with {process.returncode} before {what}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def crash_and_recover(
    db: Database, database_url: str, seen_file: Path, expected: set[str], extra: list[str]
) -> tuple[list[str], list[str], int]:
    """Start a worker, SIGKILL it once a third of the events are seen, start another, wait until both
    subscribers have everything; returns (seen ids with repeats, ledger ids, ledger rows at the kill)."""
    with db.session() as session:
        session.execute(text(LEDGER_DDL))
    command = [sys.executable, "-m", "tests.store.event_worker", database_url, str(seen_file), *extra]
    first = subprocess.Popen(command, cwd=ROOT, env=os.environ.copy())
    try:
        _wait(lambda: len(_lines(seen_file)) >= len(expected) // 3, first, 90, "a third of the events")
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    at_kill = len(_ledger(db))
    second = subprocess.Popen(command, cwd=ROOT, env=os.environ.copy())
    try:
        _wait(
            lambda: set(_lines(seen_file)) >= expected and len(set(_ledger(db))) >= len(expected),
            second,
            120,
            "every event at every subscriber",
        )
        time.sleep(0.5)  # a late duplicate would show now
    finally:
        second.terminate()
        second.wait(timeout=30)
    return _lines(seen_file), _ledger(db), at_kill
