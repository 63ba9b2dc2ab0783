"""``medfusion events``: tail (text, JSON Lines, --failed, --follow) and replay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from medfusion.record.models import PatientChart
from medfusion.store.database import get_database
from medfusion.store.event_dispatch import EventDispatcher, SubscriberRegistry, subscribers
from medfusion.store.events import RecordEvent
from medfusion.store.patients import PatientRepository
from tests.cli.test_cli import run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def registered() -> Iterator[list[RecordEvent]]:
    got: list[RecordEvent] = []
    subscribers.register("cli-test", got.append)
    yield got
    subscribers.unregister("cli-test")


def test_bulk_writes_emit_events_and_tail_prints_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(["synth", "population", "--size", "3", "--seed", "4", "--into-db"], capsys)
    assert code == 0
    code, out, _ = run(["events", "tail", "--json", "--limit", "5"], capsys)
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 5
    assert all({"type", "patient", "resource", "time", "payload_hash"} <= set(line) for line in lines)
    assert [line["seq"] for line in lines] == sorted(line["seq"] for line in lines)
    code, out, _ = run(["events", "tail"], capsys)
    assert code == 0 and len(out.splitlines()) == 20


def test_demo_seed_emits_events(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(["demo", "seed", "--size", "2"], capsys)
    assert code == 0
    code, out, _ = run(["events", "tail", "--json", "--limit", "1000"], capsys)
    assert sum(json.loads(line)["type"] == "patient.created" for line in out.splitlines()) == 2


def test_failed_deliveries_are_listed(
    capsys: pytest.CaptureFixture[str], demo_charts: list[PatientChart]
) -> None:
    db = get_database()
    with db.session() as session:
        PatientRepository(session).create(demo_charts[1])

    def broken(event: RecordEvent) -> None:
        if event.type == "patient.created":
            raise RuntimeError("downstream unavailable")

    registry = SubscriberRegistry()
    registry.register("broken", broken)
    EventDispatcher(db, registry).run_once()
    code, out, _ = run(["events", "tail", "--failed", "--json"], capsys)
    (failure,) = [json.loads(line) for line in out.splitlines()]
    assert failure["subscriber"] == "broken" and failure["attempts"] == 1
    assert failure["event"]["type"] == "patient.created"
    assert failure["last_error"] == "RuntimeError: downstream unavailable"
    code, out, _ = run(["events", "tail", "--failed"], capsys)
    assert code == 0 and "broken" in out and "attempts=1" in out


def test_replay_redelivers_to_a_registered_subscriber(
    capsys: pytest.CaptureFixture[str], demo_charts: list[PatientChart], registered: list[RecordEvent]
) -> None:
    with get_database().session() as session:
        PatientRepository(session).create(demo_charts[0])
    code, out, _ = run(
        ["events", "replay", "--since", "2000-01-01T00:00", "--subscriber", "cli-test"], capsys
    )
    assert code == 0 and f"replayed {len(registered)} event(s)" in out and registered


def test_replay_refuses_unknown_subscribers_and_bad_times(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["events", "replay", "--since", "2025-01-01", "--subscriber", "nobody"], capsys)
    assert code == 2 and "[unknown_subscriber]" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(["events", "replay", "--since", "yesterday", "--subscriber", "nobody"], capsys)
    assert code == 2 and "[invalid_input]" in err


def test_follow_streams_new_events(demo_charts: list[PatientChart]) -> None:
    db = get_database()
    with db.session() as session:
        PatientRepository(session).create(demo_charts[4])
    command = [sys.executable, "-m", "medfusion", "events", "tail", "--follow", "--json", "--limit", "1"]
    follower = subprocess.Popen(
        [*command, "--poll-seconds", "0.1"],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        last = json.loads(follower.stdout.readline())  # the newest event: the follower is running
        assert last["patient"] == demo_charts[4].patient.id
        with db.session() as session:
            PatientRepository(session).create(demo_charts[5])
        first = json.loads(follower.stdout.readline())
        assert first["type"] == "patient.created" and first["patient"] == demo_charts[5].patient.id
        assert first["seq"] == last["seq"] + 1
    finally:
        follower.terminate()
        follower.wait(timeout=10)
