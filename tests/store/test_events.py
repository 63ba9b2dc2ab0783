"""Record events: the outbox written with each record write and the embedded dispatcher, on both backends."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medfusion.errors import Conflict, NotFound
from medfusion.interop.fhir import chart_to_bundle
from medfusion.record.models import (
    ClinicalNote,
    Encounter,
    EncounterClass,
    EncounterStatus,
    NoteSection,
    NoteType,
    PatientChart,
)
from medfusion.store import events
from medfusion.store.access import system_principal
from medfusion.store.database import Database
from medfusion.store.event_dispatch import (
    Backoff,
    EventDispatcher,
    SubscriberRegistry,
    checkpoint,
    failures,
)
from medfusion.store.events import RecordEvent, chart_changes, payload_hash
from medfusion.store.patient_service import PatientService
from medfusion.store.patients import PatientRepository
from tests.store.event_worker import crash_and_recover


def _all(db: Database) -> list[RecordEvent]:
    with db.read_session() as session:
        return events.after(session, 0, limit=100_000)


def _resources(chart: PatientChart) -> int:
    return sum(len(items) for items in chart.children().values())


# --- what a write emits ---------------------------------------------------------------------------------


def test_a_new_chart_emits_one_event_per_resource_in_its_transaction(
    db: Database, demo_charts: list[PatientChart]
) -> None:
    chart = demo_charts[0]
    with db.session() as session:
        PatientRepository(session).create(chart)
    written = _all(db)
    discharged = sum(1 for e in chart.encounters if e.discharged_at)
    assert len(written) == 1 + _resources(chart) + discharged
    assert [e.seq for e in written] == list(range(1, len(written) + 1))
    assert written[0].type == "patient.created" and written[0].resource == f"Patient/{chart.patient.id}"
    assert written[0].payload_hash == payload_hash(chart.patient)
    assert all(e.patient == chart.patient.id and e.time.tzinfo is not None for e in written)
    observation = chart.observations[0]
    (obs_event,) = [e for e in written if e.resource == f"Observation/{observation.id}"]
    assert obs_event.type == "observation.recorded" and obs_event.payload_hash == payload_hash(observation)
    assert {e.type for e in written} <= events.EVENT_TYPES


def test_a_failed_write_leaves_no_events(db: Database, demo_charts: list[PatientChart]) -> None:
    with pytest.raises(Conflict), db.session() as session:
        PatientRepository(session).add_many([*demo_charts[:3], demo_charts[0]])
    assert _all(db) == []
    with db.session() as session:
        PatientRepository(session).create(demo_charts[0])
    with pytest.raises(Conflict), db.session() as session:
        PatientRepository(session).create(demo_charts[0])
    assert len(_all(db)) == len(chart_changes(None, demo_charts[0]))


def test_bulk_load_emits_for_every_chart(db: Database, demo_charts: list[PatientChart]) -> None:
    with db.session() as session:
        PatientRepository(session).add_many(demo_charts[:10])
    written = _all(db)
    assert len(written) == sum(len(chart_changes(None, c)) for c in demo_charts[:10])
    assert Counter(e.type for e in written)["patient.created"] == 10
    assert len({e.id for e in written}) == len(written)


def test_replacing_a_chart_emits_only_what_changed(db: Database, demo_charts: list[PatientChart]) -> None:
    chart = next(c for c in demo_charts if len(c.conditions) >= 2 and c.observations and c.encounters)
    with db.session() as session:
        PatientRepository(session).create(chart)
    before = len(_all(db))
    with db.session() as session:
        PatientRepository(session).replace_chart(chart)
    assert len(_all(db)) == before  # the same chart again: nothing happened to the record

    changed_obs = chart.observations[0].model_copy(update={"value_text": "阳性", "value": None, "unit": None})
    note = ClinicalNote(
        id="N-new",
        encounter_id=chart.encounters[0].id,
        note_type=NoteType.progress_note,
        author="王医生",
        written_at=chart.encounters[0].admitted_at,
        sections=[NoteSection(text="病情平稳")],
    )
    edited = chart.model_copy(
        update={
            "observations": [changed_obs, *chart.observations[1:]],
            "conditions": chart.conditions[1:],
            "notes": [*chart.notes, note],
        }
    )
    with db.session() as session:
        PatientRepository(session).replace_chart(edited)
    new = _all(db)[before:]
    assert [(e.type, e.resource) for e in new] == [
        ("condition.removed", f"Condition/{chart.conditions[0].id}"),
        ("observation.updated", f"Observation/{changed_obs.id}"),
        ("note.written", "Composition/N-new"),
    ]
    assert new[0].payload_hash == payload_hash(chart.conditions[0])  # what was removed
    assert new[1].payload_hash == payload_hash(changed_obs)


def test_admission_transfer_and_discharge(db: Database, demo_charts: list[PatientChart]) -> None:
    base = PatientChart(patient=demo_charts[1].patient)
    stay = Encounter(
        id="E1",
        encounter_class=EncounterClass.inpatient,
        status=EncounterStatus.in_progress,
        department="心血管内科",
        ward="5病区",
        bed="12",
        admitted_at=datetime(2025, 3, 1, 8, 0, tzinfo=UTC),
    )
    steps = [
        base.model_copy(update={"encounters": [stay]}),
        base.model_copy(update={"encounters": [stay.model_copy(update={"ward": "CCU", "bed": "3"})]}),
        base.model_copy(
            update={
                "encounters": [
                    stay.model_copy(
                        update={
                            "ward": "CCU",
                            "bed": "3",
                            "status": EncounterStatus.finished,
                            "discharged_at": datetime(2025, 3, 9, 10, 0, tzinfo=UTC),
                        }
                    )
                ]
            }
        ),
    ]
    for chart in steps:
        with db.session() as session:
            PatientRepository(session).replace_chart(chart)
    assert [e.type for e in _all(db)] == [
        "patient.created",
        "encounter.admitted",
        "encounter.transferred",
        "encounter.discharged",
    ]


def test_demographics_update_emits_only_when_something_changed(
    db: Database, demo_charts: list[PatientChart]
) -> None:
    chart = demo_charts[2]
    with db.session() as session:
        PatientRepository(session).create(chart)
    before = len(_all(db))
    with db.session() as session:
        PatientRepository(session).update_patient(chart.patient)
    assert len(_all(db)) == before
    moved = chart.patient.model_copy(update={"phone": "13900001111"})
    with db.session() as session:
        PatientRepository(session).update_patient(moved)
    (event,) = _all(db)[before:]
    assert event.type == "patient.updated" and event.payload_hash == payload_hash(moved)


def test_fhir_import_emits_events(db: Database, demo_charts: list[PatientChart]) -> None:
    result = PatientService(db, system_principal()).import_fhir(chart_to_bundle(demo_charts[3]))
    assert result.patient_ids == [demo_charts[3].patient.id]
    assert len(_all(db)) == len(chart_changes(None, demo_charts[3]))


def test_the_outbox_holds_a_hash_never_the_resource(db: Database, demo_charts: list[PatientChart]) -> None:
    chart = demo_charts[0]
    with db.session() as session:
        PatientRepository(session).create(chart)
    dumped = " ".join(e.model_dump_json() for e in _all(db))
    assert chart.patient.name not in dumped and str(chart.patient.id_number) not in dumped


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_chart_changes_name_exactly_the_resources_that_differ(
    demo_charts: list[PatientChart], data: st.DataObject
) -> None:
    chart = data.draw(st.sampled_from(demo_charts))
    assert chart_changes(chart, chart) == []
    assert chart_changes(chart, PatientChart.model_validate(chart.model_dump(mode="json"))) == []
    kinds = [k for k, items in chart.children().items() if items and k != "encounters"]
    kind = data.draw(st.sampled_from(kinds))
    items = list(getattr(chart, kind))
    index = data.draw(st.integers(0, len(items) - 1))
    target = items[index]
    extra = dict(target.fhir_extra, note=data.draw(st.text(min_size=1, max_size=20)))
    items[index] = target.model_copy(update={"fhir_extra": extra})
    (only,) = chart_changes(chart, chart.model_copy(update={kind: items}))
    assert only.type.endswith(".updated") and only.resource.endswith(f"/{target.id}")
    assert only.payload_hash == payload_hash(items[index])


# --- the embedded dispatcher ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 6, 30, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_every_subscriber_sees_every_event_in_order_once_per_checkpoint(
    db: Database, demo_charts: list[PatientChart]
) -> None:
    with db.session() as session:
        PatientRepository(session).add_many(demo_charts[:5])
    a: list[RecordEvent] = []
    b: list[RecordEvent] = []
    registry = SubscriberRegistry()
    registry.register("a", a.append)
    registry.register("b", b.append)
    dispatcher = EventDispatcher(db, registry, batch=7)
    report = dispatcher.run_once()
    written = _all(db)
    assert a == written and b == written and report.delivered == 2 * len(written)
    assert dispatcher.run_once().delivered == 0
    with db.session() as session:
        PatientRepository(session).create(demo_charts[6])
    dispatcher.run_once()
    assert a == _all(db) and b == _all(db)
    with db.read_session() as session:
        assert checkpoint(session, "a") == checkpoint(session, "b") == events.head(session)


def test_a_raising_subscriber_is_retried_with_backoff_reported_and_blocks_nobody(
    db: Database, demo_charts: list[PatientChart]
) -> None:
    with db.session() as session:
        PatientRepository(session).create(demo_charts[2])
    good: list[RecordEvent] = []
    bad_seen: list[RecordEvent] = []
    healthy = {"on": False}

    def flaky(event: RecordEvent) -> None:
        bad_seen.append(event)
        if event.type == "observation.recorded" and not healthy["on"]:
            raise ValueError("rule pack not loaded")

    registry = SubscriberRegistry()
    registry.register("flaky", flaky)
    registry.register("good", good.append)
    clock = Clock()
    dispatcher = EventDispatcher(db, registry, backoff=Backoff(base_seconds=10, factor=2), clock=clock)
    first = dispatcher.run_once()
    written = _all(db)
    observations = [e for e in written if e.type == "observation.recorded"]
    assert observations and good == written  # the other subscriber got everything
    assert [e.seq for e in bad_seen] == [e.seq for e in written]  # later events still reached flaky
    assert first.failed == len(observations)
    with db.read_session() as session:
        parked = failures(session)
    assert sorted(f.event.seq for f in parked) == [e.seq for e in observations]
    assert all(f.attempts == 1 and f.next_retry_at == clock.now + timedelta(seconds=10) for f in parked)
    assert all(f.last_error == "ValueError: rule pack not loaded" for f in parked)

    assert dispatcher.run_once().retried == 0  # not due yet
    clock.now += timedelta(seconds=11)
    second = dispatcher.run_once()
    assert second.retried == len(observations) and second.recovered == 0
    with db.read_session() as session:
        parked = failures(session)
    assert all(f.attempts == 2 and f.next_retry_at == clock.now + timedelta(seconds=20) for f in parked)

    healthy["on"] = True
    clock.now += timedelta(seconds=21)
    third = dispatcher.run_once()
    assert third.recovered == len(observations)
    with db.read_session() as session:
        assert failures(session) == []
        assert len(failures(session, include_resolved=True)) == len(observations)
    delivered = Counter(e.seq for e in bad_seen)
    assert all(delivered[e.seq] == 3 for e in observations)  # never silently skipped


def test_an_idempotent_subscriber_applies_a_redelivered_event_once(
    db: Database, demo_charts: list[PatientChart]
) -> None:
    with db.session() as session:
        PatientRepository(session).create(demo_charts[3])
    applied: list[str] = []

    def once(event: RecordEvent) -> None:
        with db.session() as session:
            if events.first_delivery(session, "once", event):
                applied.append(event.id)

    registry = SubscriberRegistry()
    registry.register("once", once)
    dispatcher = EventDispatcher(db, registry)
    dispatcher.run_once()
    dispatcher.replay("once", datetime(2000, 1, 1, tzinfo=UTC))
    assert sorted(applied) == sorted(e.id for e in _all(db))


def test_replay_redelivers_from_a_time_and_unknown_subscribers_are_typed_errors(
    db: Database, demo_charts: list[PatientChart]
) -> None:
    got: list[RecordEvent] = []
    registry = SubscriberRegistry()
    registry.register("got", got.append)
    dispatcher = EventDispatcher(db, registry)
    with db.session() as session:
        PatientRepository(session).create(demo_charts[4])
    dispatcher.run_once()
    cut = datetime.now(UTC)
    with db.session() as session:
        PatientRepository(session).create(demo_charts[5])
    dispatcher.run_once()
    got.clear()
    report = dispatcher.replay("got", cut)
    later = [e for e in _all(db) if e.patient == demo_charts[5].patient.id]
    assert got == later and report.delivered == len(later)
    with pytest.raises(NotFound) as missing:
        dispatcher.replay("nobody", cut)
    assert missing.value.code == "unknown_subscriber"


def test_kill_9_mid_dispatch_loses_nothing_and_applies_each_event_once(
    db: Database, database_url: str, demo_charts: list[PatientChart], tmp_path: Path
) -> None:
    with db.session() as session:
        PatientRepository(session).add_many(demo_charts[:8])
    expected = {e.id for e in _all(db)}
    seen, ledger, at_kill = crash_and_recover(db, database_url, tmp_path / "seen.txt", expected, [])
    assert at_kill < len(expected)  # the kill did land mid-way
    assert set(seen) == expected  # every subscriber saw every event …
    assert Counter(ledger) == Counter(expected)  # … and the idempotent one applied each exactly once
