"""Issue 15 part 2: versions, soft delete, explicit merge — no write loses an earlier fact.

Every path that writes chart rows (create / add_many for the API, population job and demo seed;
replace_chart for the API and feedback write-back; update_patient; FHIR import in add and merge mode) is
checked the same way: after the write, every earlier content is still readable from the history.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medfusion.cli.main import main
from medfusion.errors import Conflict, InvalidInput, NotFound
from medfusion.interop.fhir import chart_to_bundle
from medfusion.record.models import CHILD_KINDS, PatientChart
from medfusion.settings import get_settings
from medfusion.store import audit
from medfusion.store.access import system_principal
from medfusion.store.database import Database, get_database
from medfusion.store.patient_service import PatientService
from medfusion.store.patients import PatientFilters, PatientRepository
from medfusion.store.resource_versions import WriteContext

MRN = "urn:oid:2.16.156.10011.1.12.mrn"


def _dump(kind: str, item: Any) -> dict[str, Any]:
    body: dict[str, Any] = item.model_dump(mode="json", exclude={"text"} if kind == "notes" else None)
    return body


def _bodies(db: Database, patient_id: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(kind, resource id) → every stored version's body, oldest first."""
    with db.session() as session:
        page = PatientRepository(session).history(patient_id, limit=100_000)
    found: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for v in page.items:
        found.setdefault((v.kind, v.resource_id), []).append((v.version, v.body))
    return {key: [b for _, b in sorted(vs, key=lambda x: x[0])] for key, vs in found.items()}


def _assert_kept(db: Database, chart: PatientChart) -> None:
    """Every resource of ``chart`` (an earlier state) is still in the history, content unchanged."""
    bodies = _bodies(db, chart.patient.id)
    assert chart.patient.model_dump(mode="json") in bodies[("patient", chart.patient.id)]
    for kind, items in chart.children().items():
        for item in items:
            assert _dump(kind, item) in bodies[(kind, item.id)], f"{kind}/{item.id} lost"


def _stored(db: Database, patient_id: str) -> PatientChart:
    with db.session() as session:
        return PatientRepository(session).get_chart(patient_id)


def _last_audit(db: Database) -> audit.AuditEntry:
    with db.session() as session:
        return audit.latest(session, limit=1)[0]


@pytest.fixture
def stored(db: Database, demo_charts: list[PatientChart]) -> list[PatientChart]:
    charts = demo_charts[:3]
    with db.session() as session:
        PatientRepository(session).add_many(charts)
    return charts


def _edited(chart: PatientChart) -> PatientChart:
    """One observation changed, one condition left out, one encounter added."""
    first = chart.observations[0]
    changed = first.model_copy(update={"value": (first.value or 0) + 1, "value_text": None})
    return chart.model_copy(
        update={
            "observations": [changed, *chart.observations[1:]],
            "conditions": chart.conditions[1:],
            "encounters": [*chart.encounters, chart.encounters[0].model_copy(update={"id": "NEW-E9"})],
        }
    )


# --- version 1 on every create path ----------------------------------------------------------------------


def test_add_many_writes_version_one_of_every_resource(db: Database, stored: list[PatientChart]) -> None:
    for chart in stored:
        bodies = _bodies(db, chart.patient.id)
        assert len(bodies) == 1 + sum(len(v) for v in chart.children().values())
        assert all(len(v) == 1 for v in bodies.values())
        _assert_kept(db, chart)


def test_service_create_stamps_who_and_through_which_path(
    db: Database, demo_charts: list[PatientChart]
) -> None:
    chart = demo_charts[5]
    PatientService(db, system_principal()).create(chart)
    with db.session() as session:
        page = PatientRepository(session).history(chart.patient.id, kind="patient")
    (v1,) = page.items
    assert v1.version == 1 and v1.action == "created" and v1.source == "patient.create"
    assert v1.actor == system_principal().username


# --- replace_chart, update_patient: new versions, soft deletes -------------------------------------------


def test_replace_chart_keeps_the_prior_version_of_every_change(
    db: Database, stored: list[PatientChart]
) -> None:
    before = stored[0]
    after = _edited(before)
    PatientService(db, system_principal()).replace_chart(after, reason="复核后更正 corrected on review")
    assert _stored(db, before.patient.id) == after
    _assert_kept(db, before)
    _assert_kept(db, after)
    with db.session() as session:
        repo = PatientRepository(session)
        obs = repo.history(before.patient.id, kind="observations", resource_id=before.observations[0].id)
        dropped = repo.history(before.patient.id, kind="conditions", resource_id=before.conditions[0].id)
    assert [v.version for v in obs.items] == [2, 1] and obs.items[0].changes == ["value"]
    assert obs.items[0].action == "updated" and obs.items[0].reason == "复核后更正 corrected on review"
    latest = dropped.items[0]
    assert (
        latest.action == "deleted"
        and latest.deleted
        and latest.body == _dump("conditions", before.conditions[0])
    )


def test_replace_chart_writing_a_deleted_resource_again_restores_it(
    db: Database, stored: list[PatientChart]
) -> None:
    before = stored[0]
    service = PatientService(db, system_principal())
    service.replace_chart(before.model_copy(update={"conditions": before.conditions[1:]}))
    service.replace_chart(before)
    assert _stored(db, before.patient.id) == before
    with db.session() as session:
        page = PatientRepository(session).history(
            before.patient.id, kind="conditions", resource_id=before.conditions[0].id
        )
    assert [v.action for v in page.items] == ["restored", "deleted", "created"]


def test_an_unchanged_replace_writes_no_version(db: Database, stored: list[PatientChart]) -> None:
    before = _bodies(db, stored[0].patient.id)
    PatientService(db, system_principal()).replace_chart(stored[0])
    assert _bodies(db, stored[0].patient.id) == before


def test_update_patient_keeps_the_earlier_demographics(db: Database, stored: list[PatientChart]) -> None:
    patient = stored[1].patient
    PatientService(db, system_principal()).update(patient.model_copy(update={"phone": "13900001111"}))
    with db.session() as session:
        page = PatientRepository(session).history(patient.id, kind="patient")
    assert [v.version for v in page.items] == [2, 1] and page.items[0].changes == ["phone"]
    assert page.items[1].body == patient.model_dump(mode="json")


# --- soft delete -----------------------------------------------------------------------------------------


def test_a_delete_needs_a_reason(db: Database, stored: list[PatientChart]) -> None:
    chart = stored[0]
    service = PatientService(db, system_principal())
    for reason in ("", "   "):
        with pytest.raises(InvalidInput):
            service.delete_resource(chart.patient.id, "conditions", chart.conditions[0].id, reason)
    assert _stored(db, chart.patient.id) == chart


def test_a_soft_delete_hides_keeps_and_audits(db: Database, stored: list[PatientChart]) -> None:
    chart = stored[0]
    condition = chart.conditions[0]
    service = PatientService(db, system_principal())
    version = service.delete_resource(chart.patient.id, "conditions", condition.id, "重复录入 entered twice")
    assert version == 2
    assert condition.id not in {c.id for c in _stored(db, chart.patient.id).conditions}
    _assert_kept(db, chart)
    entry = _last_audit(db)
    assert entry.action == "chart.delete" and entry.outcome == "success"
    assert entry.detail["reason"] == "重复录入 entered twice"
    assert entry.detail["resource"] == f"Condition/{condition.id}"
    with pytest.raises(Conflict):
        service.delete_resource(chart.patient.id, "conditions", condition.id, "again")
    with pytest.raises(NotFound):
        service.delete_resource(chart.patient.id, "conditions", "NO-SUCH", "x")
    with pytest.raises(InvalidInput):
        service.delete_resource(chart.patient.id, "patient", chart.patient.id, "x")


def test_search_ignores_a_deleted_diagnosis(db: Database, stored: list[PatientChart]) -> None:
    chart = stored[0]
    only = [c for c in chart.conditions]
    service = PatientService(db, system_principal())
    for condition in only:
        service.delete_resource(chart.patient.id, "conditions", condition.id, "录错患者 wrong patient")
    with db.session() as session:
        repo = PatientRepository(session)
        for condition in only:
            ids = {p.id for p in repo.search(PatientFilters(diagnosis_code=condition.icd10_code)).items}
            assert chart.patient.id not in ids


# --- FHIR import: add mode refuses, merge mode versions ----------------------------------------------------


def _changed_bundle(chart: PatientChart) -> dict[str, Any]:
    first = chart.observations[0]
    changed = first.model_copy(update={"value": (first.value or 0) + 2, "value_text": None})
    edited = chart.model_copy(
        update={
            "patient": chart.patient.model_copy(update={"phone": "13800002222"}),
            "observations": [changed],
        }
    )
    return chart_to_bundle(edited)


def test_merge_mode_writes_conflicts_as_new_versions(db: Database, stored: list[PatientChart]) -> None:
    chart = stored[0]
    service = PatientService(db, system_principal())
    with pytest.raises(Conflict) as caught:
        service.import_fhir(_changed_bundle(chart))
    assert caught.value.code == "chart_resource_conflict"
    assert _stored(db, chart.patient.id) == chart
    result = service.import_fhir(_changed_bundle(chart), merge=True)
    assert result.mode == "merge" and result.updated == [chart.patient.id] and result.resources_revised == 1
    now = _stored(db, chart.patient.id)
    assert (
        now.patient.phone == "13800002222"
        and now.observations[0].value == (chart.observations[0].value or 0) + 2
    )
    assert len(now.conditions) == len(chart.conditions)  # nothing removed
    _assert_kept(db, chart)
    entry = _last_audit(db)
    assert entry.detail["mode"] == "merge"
    assert {"resource": f"Observation/{chart.observations[0].id}", "fields": ["value"]} in entry.detail[
        "revised"
    ]
    assert {"resource": f"Patient/{chart.patient.id}", "fields": ["phone"]} in entry.detail["revised"]
    assert "13800002222" not in json.dumps(entry.detail)
    with db.session() as session:
        page = PatientRepository(session).history(chart.patient.id, kind="patient")
    assert page.items[0].action == "merged" and page.items[0].source == "fhir.import.merge"


def test_merge_mode_versions_an_identity_change_and_keeps_the_earlier_identity(
    db: Database, stored: list[PatientChart]
) -> None:
    chart = stored[1]
    renamed = chart.model_copy(update={"patient": chart.patient.model_copy(update={"name": "王更名"})})
    service = PatientService(db, system_principal())
    with pytest.raises(Conflict) as caught:
        service.import_fhir(chart_to_bundle(renamed))
    assert caught.value.code == "patient_identity_conflict"
    service.import_fhir(chart_to_bundle(renamed), merge=True)
    assert _stored(db, chart.patient.id).patient.name == "王更名"
    _assert_kept(db, chart)


def test_another_id_with_a_stored_id_number_is_that_person(db: Database, stored: list[PatientChart]) -> None:
    chart = stored[0]
    assert chart.patient.id_number
    alias = chart.model_copy(
        update={
            "patient": chart.patient.model_copy(update={"id": "ALIAS-1"}),
            "encounters": [chart.encounters[0].model_copy(update={"id": "ALIAS-E1"})],
            **{kind: [] for kind in CHILD_KINDS if kind != "encounters"},
        }
    )
    service = PatientService(db, system_principal())
    with pytest.raises(Conflict) as caught:
        service.import_fhir(chart_to_bundle(alias))
    assert caught.value.code == "patient_identity_conflict"
    result = service.import_fhir(chart_to_bundle(alias), merge=True)
    assert result.patient_ids == [chart.patient.id] and result.created == []
    with db.session() as session:
        assert not PatientRepository(session).exists("ALIAS-1")
    assert "ALIAS-E1" in {e.id for e in _stored(db, chart.patient.id).encounters}
    _assert_kept(db, chart)


def _with_mrn(chart: PatientChart, patient_id: str | None, mrn: str, *, id_number: bool) -> dict[str, Any]:
    bundle = chart_to_bundle(chart)
    resource = bundle["entry"][0]["resource"]
    identifiers = resource.get("identifier", []) if id_number else []
    resource["identifier"] = [*identifiers, {"system": MRN, "value": mrn}]
    if patient_id is None:
        resource.pop("id", None)
    else:
        resource["id"] = patient_id
    return bundle


def test_the_same_mrn_under_another_id_is_that_person(db: Database, demo_charts: list[PatientChart]) -> None:
    chart = demo_charts[10]
    service = PatientService(db, system_principal())
    service.import_fhir(_with_mrn(chart, chart.patient.id, "MRN-77", id_number=True))
    only_patient = chart.model_copy(update={kind: [] for kind in CHILD_KINDS})
    elsewhere = _with_mrn(only_patient, "OTHER-9", "MRN-77", id_number=False)
    with pytest.raises(Conflict) as caught:
        service.import_fhir(elsewhere)
    assert caught.value.code == "patient_identity_conflict"
    assert [d["field"] for d in caught.value.details["differences"]] == [f"identifier[{MRN}]"]
    result = service.import_fhir(elsewhere, merge=True)
    assert result.patient_ids == [chart.patient.id]
    with db.session() as session:
        assert not PatientRepository(session).exists("OTHER-9")


def test_deleted_resources_stay_deleted_unless_a_merge_brings_new_content(
    db: Database, stored: list[PatientChart]
) -> None:
    chart = stored[2]
    condition = chart.conditions[0]
    service = PatientService(db, system_principal())
    service.delete_resource(chart.patient.id, "conditions", condition.id, "误诊 misdiagnosis")
    result = service.import_fhir(chart_to_bundle(chart))  # the same content again: stays deleted
    assert result.unchanged == [chart.patient.id]
    assert condition.id not in {c.id for c in _stored(db, chart.patient.id).conditions}
    renamed = condition.model_copy(update={"name": f"{condition.name}（复核）"})
    again = chart.model_copy(update={"conditions": [renamed]})
    with pytest.raises(Conflict) as caught:
        service.import_fhir(chart_to_bundle(again))
    assert "deleted" in {d["field"] for d in caught.value.details["differences"]}
    service.import_fhir(chart_to_bundle(again), merge=True)
    assert renamed in _stored(db, chart.patient.id).conditions
    with db.session() as session:
        page = PatientRepository(session).history(
            chart.patient.id, kind="conditions", resource_id=condition.id
        )
    assert [v.action for v in page.items] == ["restored", "deleted", "created"]


# --- reads -------------------------------------------------------------------------------------------------


def test_an_encounter_still_referenced_is_not_deleted(db: Database, stored: list[PatientChart]) -> None:
    chart = stored[0]
    encounter = next(e for e in chart.encounters if any(c.encounter_id == e.id for c in chart.conditions))
    with pytest.raises(Conflict) as caught:
        PatientService(db, system_principal()).delete_resource(
            chart.patient.id, "encounters", encounter.id, "x"
        )
    assert caught.value.details["referenced_by"]
    assert _stored(db, chart.patient.id) == chart


def test_the_history_reader_is_scoped_to_one_chart(db: Database, stored: list[PatientChart]) -> None:
    with db.session() as session:
        page = PatientRepository(session).history(stored[0].patient.id)
        assert {v.patient_id for v in page.items} == {stored[0].patient.id}
        with pytest.raises(NotFound):
            PatientRepository(session).history("NOBODY")


# --- property: any sequence of writes leaves every earlier state readable ----------------------------------

_OPS = st.lists(
    st.tuples(st.sampled_from(["replace", "delete", "merge"]), st.integers(0, 10_000)), min_size=1, max_size=6
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=_OPS, which=st.integers(0, 39))
def test_no_sequence_of_writes_loses_an_earlier_state(
    db: Database, demo_charts: list[PatientChart], ops: list[tuple[str, int]], which: int
) -> None:
    base = demo_charts[which]
    with db.session() as session:
        if PatientRepository(session).exists(base.patient.id):
            return  # an earlier example wrote this chart; hypothesis explores others
    PatientService(db, system_principal()).create(base)
    states = [base]
    service = PatientService(db, system_principal())
    for op, seed in ops:
        current = _stored(db, base.patient.id)
        if op == "delete":
            items = [(k, i.id) for k, v in current.children().items() for i in v]
            if items:
                kind, rid = items[seed % len(items)]
                referenced = kind == "encounters" and any(
                    getattr(x, "encounter_id", None) == rid for v in current.children().values() for x in v
                )
                if referenced:  # refused: the chart would point at nothing
                    with pytest.raises(Conflict):
                        service.delete_resource(base.patient.id, kind, rid, f"property test {seed}")
                else:
                    service.delete_resource(base.patient.id, kind, rid, f"property test {seed}")
        elif op == "replace":
            observations = current.observations
            kept = [o for j, o in enumerate(observations) if (seed >> (j % 12)) & 1]
            if kept:
                kept[0] = kept[0].model_copy(update={"note": f"rev {seed}"})
            service.replace_chart(current.model_copy(update={"observations": kept}))
        elif current.observations:
            obs = current.observations[seed % len(current.observations)]
            changed = obs.model_copy(update={"note": f"merged {seed}"})
            service.import_fhir(
                chart_to_bundle(current.model_copy(update={"observations": [changed]})), merge=True
            )
        states.append(_stored(db, base.patient.id))
    for state in states:
        _assert_kept(db, state)
    with db.session() as session:
        page = PatientRepository(session).history(base.patient.id, limit=100_000)
    numbers: dict[tuple[str, str], list[int]] = {}
    for v in page.items:
        numbers.setdefault((v.kind, v.resource_id), []).append(v.version)
    assert all(sorted(n) == list(range(1, len(n) + 1)) for n in numbers.values())


# --- the CLI: population job, demo seed, fhir import --merge, patient history/delete ------------------------


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(args)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_cli_population_job_merge_import_history_and_delete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = _run(["synth", "population", "--size", "2", "--seed", "4", "--into-db"], capsys)
    assert code == 0
    db = get_database(get_settings())
    before = _stored(db, "P0000001")
    _assert_kept(db, before)
    with db.session() as session:
        v1 = PatientRepository(session).history("P0000001", kind="patient").items[0]
    assert v1.source == "synth-population-db" and v1.actor.startswith("job:")
    line = tmp_path / "changed.json"
    line.write_text(json.dumps(_changed_bundle(before), ensure_ascii=False), encoding="utf-8")
    code, _, err = _run(["fhir", "import", str(line)], capsys)
    assert code == 2 and "chart_resource_conflict" in err
    code, out, _ = _run(["fhir", "import", str(line), "--merge"], capsys)
    assert code == 0 and f"new version of Observation/{before.observations[0].id}: value" in out
    _assert_kept(db, before)
    code, out, _ = _run(
        ["patient", "history", "P0000001", "--kind", "observations", "--resource", before.observations[0].id],
        capsys,
    )
    assert code == 0 and "v2 merged" in out and "v1 created" in out
    condition = before.conditions[0].id
    code, _, err = _run(["patient", "delete", "P0000001", "conditions", condition, "--reason", " "], capsys)
    assert code == 2 and "invalid_input" in err
    code, out, _ = _run(
        ["patient", "delete", "P0000001", "conditions", condition, "--reason", "重复"], capsys
    )
    assert code == 0 and '"version": 2' in out
    code, out, _ = _run(["patient", "history", "P0000001", "--json"], capsys)
    page = json.loads(out)
    assert any(
        v["resource_id"] == condition and v["action"] == "deleted" and v["reason"] == "重复"
        for v in page["items"]
    )


def test_demo_seed_writes_version_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = _run(["demo", "seed", "--size", "2"], capsys)
    assert code == 0
    db = get_database(get_settings())
    with db.session() as session:
        first = PatientRepository(session).ids(limit=1)[0]
    _assert_kept(db, _stored(db, first))


def test_feedback_write_back_path_keeps_the_notes_it_replaces(
    db: Database, stored: list[PatientChart]
) -> None:
    """feedback.service writes a confirmed draft with replace_chart under the clinician's name."""
    chart = stored[0]
    note = chart.notes[0]
    with db.session() as session:
        repo = PatientRepository(session, WriteContext(actor="dr_li", source="feedback.write_back"))
        edited = note.model_copy(update={"title": f"{note.title}（修订）"})
        repo.replace_chart(chart.model_copy(update={"notes": [edited, *chart.notes[1:]]}))
    _assert_kept(db, chart)
    with db.session() as session:
        page = PatientRepository(session).history(chart.patient.id, kind="notes", resource_id=note.id)
    assert page.items[0].actor == "dr_li" and page.items[0].source == "feedback.write_back"


# --- migration 0012 backfills what the record already held --------------------------------------------------


def test_migration_0012_makes_stored_rows_version_one(
    database_url: str, demo_charts: list[PatientChart]
) -> None:
    """Rows written under 0011 become version 1 with a history row; their MRN is indexed for matching."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import insert

    from medfusion.store.database import _alembic_config
    from medfusion.store.tables import ConditionRow, PatientRow

    chart = demo_charts[0]
    patient = chart.patient.model_copy(
        update={"fhir_extra": {"identifier": [{"system": MRN, "value": "MRN-OLD"}]}}
    )
    patient_columns = {c.name for c in PatientRow.__table__.columns} - {"version"}
    condition_columns = {c.name for c in ConditionRow.__table__.columns} - {"version", "deleted_at"}
    patient_values = PatientRepository._patient_values(patient, created=datetime.now(UTC))
    condition_values = next(vs[0] for k, vs in PatientRepository._child_values(chart) if k == "conditions")
    database = Database(database_url)
    cfg = _alembic_config()
    try:
        with database.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0011")
            conn.execute(
                insert(PatientRow).values({k: v for k, v in patient_values.items() if k in patient_columns})
            )
            conn.execute(
                insert(ConditionRow).values(
                    {k: v for k, v in condition_values.items() if k in condition_columns}
                )
            )
            command.upgrade(cfg, "0012")
        with database.session() as session:
            repo = PatientRepository(session)
            page = repo.history(chart.patient.id)
            assert {(v.kind, v.resource_id, v.version, v.actor) for v in page.items} == {
                ("patient", chart.patient.id, 1, "migration:0012"),
                ("conditions", chart.conditions[0].id, 1, "migration:0012"),
            }
            assert page.items[0].body in (patient.model_dump(mode="json"), condition_values["body"])
            someone = patient.model_copy(update={"id": "X1", "id_number": None})
            assert repo._owners(someone) == {chart.patient.id: [(f"identifier[{MRN}]", "MRN-OLD")]}
    finally:
        database.dispose()
