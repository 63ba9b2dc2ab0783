"""Storage behaviour, run on SQLite and (with MEDFUSION_TEST_PG_URL) on PostgreSQL."""

from __future__ import annotations

import pytest

from medfusion.errors import Conflict, NotFound
from medfusion.record.models import PatientChart
from medfusion.store.database import Database
from medfusion.store.patients import PatientFilters, PatientRepository


def _load(db: Database, charts: list[PatientChart]) -> None:
    with db.session() as session:
        PatientRepository(session).add_many(charts)


def test_a_chart_reads_back_exactly_as_written(db: Database, demo_charts: list[PatientChart]) -> None:
    _load(db, demo_charts[:10])
    with db.session() as session:
        repo = PatientRepository(session)
        for chart in demo_charts[:10]:
            assert repo.get_chart(chart.patient.id) == chart
        assert repo.count() == 10


def test_search_filters_combine(db: Database, demo_charts: list[PatientChart]) -> None:
    _load(db, demo_charts)
    target = next(c for c in demo_charts if c.conditions and c.encounters)
    code = target.conditions[0].icd10_code
    department = target.encounters[0].department
    with db.session() as session:
        repo = PatientRepository(session)
        by_id = repo.search(PatientFilters(id_number=target.patient.id_number))
        assert [p.id for p in by_id.items] == [target.patient.id]
        by_name = repo.search(PatientFilters(name=target.patient.name[1:]))
        assert target.patient.id in [p.id for p in by_name.items]
        by_code = repo.search(PatientFilters(diagnosis_code=code.split(".")[0]), limit=500)
        expected = {
            c.patient.id
            for c in demo_charts
            if any(
                d.icd10_code.startswith(code.split(".")[0] + ".") or d.icd10_code == code.split(".")[0]
                for d in c.conditions
            )
        }
        assert {p.id for p in by_code.items} == expected and by_code.total == len(expected)
        both = repo.search(PatientFilters(diagnosis_code=code, department=department), limit=500)
        assert target.patient.id in {p.id for p in both.items}
        assert all(
            any(d.icd10_code == code for d in c.conditions)
            and any(e.department == department for e in c.encounters)
            for c in demo_charts
            if c.patient.id in {p.id for p in both.items}
        )
        page = repo.search(PatientFilters(), limit=7, offset=7)
        assert page.total == len(demo_charts) and len(page.items) == 7


def test_like_wildcards_in_names_are_literal(db: Database, demo_charts: list[PatientChart]) -> None:
    _load(db, demo_charts[:5])
    with db.session() as session:
        assert PatientRepository(session).search(PatientFilters(name="%")).total == 0


def test_duplicate_patient_and_id_number_conflict(db: Database, demo_charts: list[PatientChart]) -> None:
    _load(db, demo_charts[:1])
    with pytest.raises(Conflict), db.session() as session:
        PatientRepository(session).create(demo_charts[0])
    clone = demo_charts[0].model_copy(deep=True)
    clone.patient = clone.patient.model_copy(update={"id": "OTHER"})
    with pytest.raises(Conflict, match="身份证号"), db.session() as session:
        PatientRepository(session).create(PatientChart(patient=clone.patient))


def test_a_failed_batch_writes_nothing(db: Database, demo_charts: list[PatientChart]) -> None:
    batch = [*demo_charts[:3], demo_charts[0]]  # the duplicate fails at the end
    with pytest.raises(Conflict), db.session() as session:
        PatientRepository(session).add_many(batch)
    with db.session() as session:
        assert PatientRepository(session).count() == 0


def test_replace_chart_swaps_every_resource(db: Database, demo_charts: list[PatientChart]) -> None:
    _load(db, demo_charts[:1])
    original = demo_charts[0]
    trimmed = original.model_copy(update={"observations": original.observations[:1], "notes": []})
    with db.session() as session:
        PatientRepository(session).replace_chart(trimmed)
    with db.session() as session:
        assert PatientRepository(session).get_chart(original.patient.id) == trimmed


def test_missing_patient_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound), db.session() as session:
        PatientRepository(session).get_chart("nobody")


def test_only_patient_accounts_link_to_a_record(db: Database, demo_charts: list[PatientChart]) -> None:
    from medfusion.errors import InvalidInput
    from medfusion.store.users import create_user

    _load(db, demo_charts[:1])
    with pytest.raises(InvalidInput, match="patient_id"), db.session() as session:
        create_user(session, "dr_x", "longenough1", "doctor", demo_charts[0].patient.id)
    with pytest.raises(InvalidInput, match="patient_id"), db.session() as session:
        create_user(session, "pat_x", "longenough1", "patient", None)
    with db.session() as session:
        user = create_user(session, "pat_y", "longenough1", "patient", demo_charts[0].patient.id)
    assert user.patient_id == demo_charts[0].patient.id
