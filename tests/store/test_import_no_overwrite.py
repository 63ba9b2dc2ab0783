"""Issue 15: a FHIR import never replaces or deletes what a chart holds (API, CLI, service).

An incoming Patient is matched to a stored one by its identity (id, 身份证号, name, birth date, sex, other
identifiers by system). A conflicting identity, or a resource with the same id but other content, is a 409
and the whole Bundle writes nothing; a matching identity adds what is new and leaves the rest untouched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from medfusion.api.app import create_app
from medfusion.cli.main import main
from medfusion.errors import Conflict
from medfusion.interop.fhir import chart_to_bundle
from medfusion.record.models import PatientChart
from medfusion.settings import get_settings
from medfusion.store import audit
from medfusion.store import events as record_events
from medfusion.store.access import Role, system_principal
from medfusion.store.database import Database, get_database
from medfusion.store.display import ShownChart
from medfusion.store.patient_service import PatientService
from medfusion.store.patients import PatientRepository
from medfusion.store.users import create_user
from medfusion.synth import generate_population

PASSWORD = "correct-horse-battery"


def _impostor(chart: PatientChart, *, name: str = "冒名顶替") -> PatientChart:
    """Same Patient.id, another person (no 身份证号), one encounter of their own."""
    patient = chart.patient.model_copy(
        update={
            "name": name,
            "id_number": None,
            "phone": None,
            "address": None,
            "birth_date": chart.patient.birth_date.replace(year=1999),
        }
    )
    encounter = chart.encounters[0].model_copy(update={"id": "X-E1"})
    return PatientChart(patient=patient, encounters=[encounter])


def _counts(chart: PatientChart) -> dict[str, int]:
    return {kind: len(items) for kind, items in chart.children().items()}


def _stored(db: Database, patient_id: str) -> PatientChart:
    with db.session() as session:
        return PatientRepository(session).get_chart(patient_id)


def _events(db: Database) -> int:
    with db.session() as session:
        return record_events.count(session)


def _last_audit(db: Database) -> audit.AuditEntry:
    with db.session() as session:
        return audit.latest(session, limit=1)[0]


# --- the service (every surface goes through it) -----------------------------------------------------


@pytest.fixture
def two(db: Database, demo_charts: list[PatientChart]) -> list[PatientChart]:
    charts = demo_charts[:2]
    with db.session() as session:
        PatientRepository(session).add_many(charts)
    return charts


def test_an_impostor_with_the_same_id_is_refused_and_nothing_is_written(
    db: Database, two: list[PatientChart]
) -> None:
    victim = two[1]
    events = _events(db)
    with pytest.raises(Conflict) as caught:
        PatientService(db, system_principal()).import_fhir(chart_to_bundle(_impostor(victim)))
    error = caught.value
    assert error.code == "patient_identity_conflict" and error.status_code == 409
    fields = {d["field"] for d in error.details["differences"]}
    assert {"name", "birth_date"} <= fields
    assert victim.patient.name not in error.message and "冒名顶替" not in error.message
    assert _stored(db, victim.patient.id) == victim
    assert _events(db) == events
    entry = _last_audit(db)
    assert entry.action == "fhir.import" and entry.outcome == "failed"
    assert victim.patient.name not in json.dumps(entry.detail, ensure_ascii=False)


def test_reimporting_an_exported_chart_changes_nothing(db: Database, two: list[PatientChart]) -> None:
    events = _events(db)
    result = PatientService(db, system_principal()).import_fhir(chart_to_bundle(two[0]))
    assert result.unchanged == [two[0].patient.id] and result.created == [] and result.updated == []
    assert _stored(db, two[0].patient.id) == two[0]
    assert _events(db) == events
    detail = _last_audit(db).detail
    assert detail["unchanged"] == [two[0].patient.id] and detail["created"] == []


def test_a_partial_bundle_of_the_same_person_adds_and_never_removes(
    db: Database, two: list[PatientChart]
) -> None:
    chart = two[0]
    new_encounter = chart.encounters[0].model_copy(update={"id": "NEW-E1"})
    partial = PatientChart(
        patient=chart.patient.model_copy(update={"phone": None, "address": None}),
        encounters=[chart.encounters[0], new_encounter],
    )
    result = PatientService(db, system_principal()).import_fhir(chart_to_bundle(partial))
    assert result.updated == [chart.patient.id]
    stored = _stored(db, chart.patient.id)
    assert stored.patient == chart.patient  # ID number, phone and address kept
    assert [e.id for e in stored.encounters] == [*(e.id for e in chart.encounters), "NEW-E1"]
    for kind, items in chart.children().items():
        if kind != "encounters":
            assert stored.children()[kind] == items
    detail = _last_audit(db).detail
    assert detail["updated"] == [chart.patient.id] and detail["resources"]["added"] == 1


def test_a_changed_resource_is_refused_by_name(db: Database, two: list[PatientChart]) -> None:
    chart = two[0]
    observation = chart.observations[0]
    changed = chart.model_copy(
        update={"observations": [observation.model_copy(update={"name": observation.name + "（改）"})]}
    )
    with pytest.raises(Conflict) as caught:
        PatientService(db, system_principal()).import_fhir(chart_to_bundle(changed))
    assert caught.value.code == "chart_resource_conflict"
    assert f"Observation/{observation.id}" in caught.value.message
    assert _stored(db, chart.patient.id) == chart


def test_a_changed_phone_is_refused_not_overwritten(db: Database, two: list[PatientChart]) -> None:
    chart = two[0]
    moved = chart.model_copy(update={"patient": chart.patient.model_copy(update={"phone": "13800000000"})})
    with pytest.raises(Conflict) as caught:
        PatientService(db, system_principal()).import_fhir(chart_to_bundle(moved))
    assert caught.value.code == "chart_resource_conflict"
    assert any(d["field"] == "phone" for d in caught.value.details["differences"])
    assert _stored(db, chart.patient.id) == chart


def test_one_conflict_in_a_bundle_writes_nothing_of_it(
    db: Database, two: list[PatientChart], demo_charts: list[PatientChart]
) -> None:
    fresh = demo_charts[5]
    bundle = chart_to_bundle(fresh)
    bad = chart_to_bundle(_impostor(two[1]))
    combined = {**bundle, "entry": bundle["entry"] + bad["entry"]}
    with pytest.raises(Conflict):
        PatientService(db, system_principal()).import_fhir(combined)
    with db.session() as session:
        assert not PatientRepository(session).exists(fresh.patient.id)
    assert _stored(db, two[1].patient.id) == two[1]


def test_a_patient_without_id_matches_by_id_number(db: Database, two: list[PatientChart]) -> None:
    chart = two[0]
    bundle = chart_to_bundle(PatientChart(patient=chart.patient))
    del bundle["entry"][0]["resource"]["id"]
    result = PatientService(db, system_principal()).import_fhir(bundle)
    assert result.patient_ids == [chart.patient.id] and result.unchanged == [chart.patient.id]
    with db.session() as session:
        assert PatientRepository(session).count() == 2
    assert _stored(db, chart.patient.id) == chart


def test_a_different_id_with_anothers_id_number_is_refused(db: Database, two: list[PatientChart]) -> None:
    chart = two[0]
    other = chart.patient.model_copy(update={"id": "FOREIGN-1"})
    with pytest.raises(Conflict) as caught:
        PatientService(db, system_principal()).import_fhir(chart_to_bundle(PatientChart(patient=other)))
    assert caught.value.code == "patient_identity_conflict"
    with db.session() as session:
        assert not PatientRepository(session).exists("FOREIGN-1")


def test_a_different_identifier_of_the_same_system_is_an_identity_conflict(
    db: Database, two: list[PatientChart]
) -> None:
    mrn = {"system": "urn:oid:1.2.3.4.mrn", "value": "MRN-1"}
    chart = two[0]
    bundle = chart_to_bundle(chart)
    bundle["entry"][0]["resource"]["identifier"].append(mrn)
    PatientService(db, system_principal()).import_fhir(bundle)
    assert _stored(db, chart.patient.id).patient.fhir_extra["identifier"] == [mrn]
    bundle["entry"][0]["resource"]["identifier"][-1] = {**mrn, "value": "MRN-2"}
    with pytest.raises(Conflict) as caught:
        PatientService(db, system_principal()).import_fhir(bundle)
    assert caught.value.code == "patient_identity_conflict"
    assert [d["field"] for d in caught.value.details["differences"]] == ["identifier[urn:oid:1.2.3.4.mrn]"]


# --- the API -------------------------------------------------------------------------------------------


@pytest.fixture
def api(demo_charts: list[PatientChart]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    db = get_database(get_settings())
    with db.session() as session:
        PatientRepository(session).add_many(demo_charts[:3])
        create_user(session, "doctor", PASSWORD, Role.doctor, None)
    with TestClient(create_app(get_settings())) as client:
        token = client.post("/api/auth/token", data={"username": "doctor", "password": PASSWORD})
        yield client, {"Authorization": f"Bearer {token.json()['access_token']}"}


def test_api_refuses_an_impostor_with_409(
    api: tuple[TestClient, dict[str, str]], demo_charts: list[PatientChart]
) -> None:
    client, h = api
    victim = demo_charts[1]
    response = client.post(
        "/api/patients/fhir", headers=h, content=json.dumps(chart_to_bundle(_impostor(victim)))
    )
    assert response.status_code == 409, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "patient_identity_conflict"
    assert {"name", "birth_date"} <= {d["field"] for d in error["details"]["differences"]}
    # the stored ID number is never echoed in full
    assert str(victim.patient.id_number) not in response.text
    chart = ShownChart.model_validate(
        client.get(
            f"/api/patients/{victim.patient.id}/chart", headers=h, params={"reveal": "identifiers"}
        ).json()
    ).as_chart()
    assert chart == victim and _counts(chart) == _counts(victim)


def test_api_reports_created_updated_unchanged(
    api: tuple[TestClient, dict[str, str]], demo_charts: list[PatientChart]
) -> None:
    client, h = api
    bundle = chart_to_bundle(demo_charts[0])
    fresh = chart_to_bundle(demo_charts[7])
    combined = {**bundle, "entry": bundle["entry"] + fresh["entry"]}
    response = client.post("/api/patients/fhir", headers=h, content=json.dumps(combined))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["created"] == [demo_charts[7].patient.id]
    assert body["unchanged"] == [demo_charts[0].patient.id] and body["updated"] == []


# --- the CLI --------------------------------------------------------------------------------------------


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(args)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_cli_refuses_a_synth_line_that_reuses_an_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = _run(["synth", "population", "--size", "3", "--seed", "4", "--into-db"], capsys)
    assert code == 0
    db = get_database(get_settings())
    before = _stored(db, "P0000001")
    other = next(iter(generate_population(1, seed=99)))
    assert other.patient.id == "P0000001" and other.patient.name != before.patient.name
    line = tmp_path / "one.json"
    line.write_text(json.dumps(chart_to_bundle(other), ensure_ascii=False), encoding="utf-8")
    code, _, err = _run(["fhir", "import", str(line)], capsys)
    assert code == 2 and "patient_identity_conflict" in err and len(err.strip().splitlines()) == 1
    assert before.patient.name not in err and other.patient.name not in err
    assert _stored(db, "P0000001") == before


def test_demo_seed_never_replaces_a_stored_chart(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = _run(["synth", "population", "--size", "2", "--seed", "4", "--into-db"], capsys)
    assert code == 0
    db = get_database(get_settings())
    before = _stored(db, "P0000001")
    code, out, _ = _run(["demo", "seed", "--size", "3"], capsys)
    assert code == 0 and "not reseeding" in out
    assert _stored(db, "P0000001") == before
