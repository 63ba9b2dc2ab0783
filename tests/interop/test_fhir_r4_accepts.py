"""Issue 15 part 3: what FHIR R4 accepts, the importer accepts (profile ``r4``, the default); our own
feeds' rules stay available as ``medfusion-strict``. Examples: ``r4_examples.py`` (written from the R4
specification). Each test here fails on the importer before issue 15, which refused these Bundles whole."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medfusion.cli.main import main
from medfusion.errors import InvalidFhir
from medfusion.interop.fhir import bundle_to_charts, chart_to_bundle
from medfusion.record.models import CodingStatus
from medfusion.store.access import system_principal
from medfusion.store.database import Database
from medfusion.store.fhir_raw import FhirRawRepository
from medfusion.store.patient_service import PatientService
from medfusion.store.patients import PatientRepository
from tests.interop import r4_examples as ex

STRICT = "medfusion-strict"


@pytest.mark.parametrize("name", sorted(ex.examples()))
def test_every_r4_example_imports_with_nothing_dropped(name: str) -> None:
    bundle = ex.examples()[name]
    result = bundle_to_charts(bundle)
    assert len(result.charts) == 1
    assert len(result.raw) == len(bundle["entry"])  # every resource kept as received
    assert {(r.resource_type, r.resource_id) for r in result.raw} == {
        (e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]
    }


@pytest.mark.parametrize(
    "name",
    [
        "patient_without_name",
        "us_phone_and_address",
        "medication_without_authored_on",
        "snomed_condition",
        "local_code_condition",
        "loinc_observation_without_effective",
        "procedure_snomed_only",
        "composition_without_author_display",
        "encounter_without_service_type",
        "relative_reference_outside",
    ],
)
def test_the_strict_profile_keeps_the_old_rules(name: str) -> None:
    with pytest.raises(InvalidFhir) as exc:
        bundle_to_charts(ex.examples()[name], profile=STRICT)
    assert exc.value.details and "entry[" in exc.value.details[0]["field"]


def test_missing_times_are_unknown_not_invented() -> None:
    (chart,) = bundle_to_charts(ex.examples()["medication_without_authored_on"]).charts
    assert chart.medications[0].start is None
    (chart,) = bundle_to_charts(ex.examples()["loinc_observation_without_effective"]).charts
    (obs,) = chart.observations
    assert obs.effective_at is None and obs.loinc_code == "4548-4" and obs.value == 6.1


def test_patient_without_name_and_encounter_without_service_type() -> None:
    (chart,) = bundle_to_charts(ex.examples()["patient_without_name"]).charts
    assert chart.patient.name is None
    assert chart.encounters[0].department is None


@pytest.mark.parametrize("birth", [None, "1961", "1961-05"])
def test_an_absent_or_partial_birth_date_is_unknown_and_round_trips(birth: str | None, db: Database) -> None:
    """R4 Patient.birthDate is 0..1 and may be a partial date: stored unknown, never guessed, and given
    back on export as it came; the strict profile still requires it."""
    bundle = copy.deepcopy(ex.examples()["patient_without_name"])
    patient = bundle["entry"][0]["resource"]
    patient.pop("birthDate", None)
    if birth is not None:
        patient["birthDate"] = birth
    (chart,) = bundle_to_charts(bundle).charts
    assert chart.patient.birth_date is None
    service = PatientService(db, system_principal())
    service.import_fhir(bundle)
    with db.session() as session:
        assert PatientRepository(session).get_chart(chart.patient.id).patient.birth_date is None
    exported = service.export_fhir(chart.patient.id)
    (out,) = [e["resource"] for e in exported["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert out.get("birthDate") == birth
    with pytest.raises(InvalidFhir) as exc:
        bundle_to_charts(bundle, profile=STRICT)
    assert exc.value.details


def test_us_phone_and_address_are_stored_as_given_with_a_warning() -> None:
    result = bundle_to_charts(ex.examples()["us_phone_and_address"])
    patient = result.charts[0].patient
    assert patient.phone == "555-401-7812" and patient.name == "Abe604 Kuhn96"
    assert patient.address is not None and patient.address.postal_code == "02108"
    assert patient.address.country == "US"
    assert any(i.kind == "warning" and "telecom" in i.path for i in result.issues)


def test_snomed_condition_is_mapped_and_keeps_its_snomed_coding() -> None:
    result = bundle_to_charts(ex.examples()["snomed_condition"])
    (cond,) = result.charts[0].conditions
    assert cond.icd10_code == "I10" and cond.coding_status is CodingStatus.mapped
    assert [(c.system, c.code) for c in cond.codings] == [(ex.SNOMED, "59621000")]
    assert any(i.kind == "mapped" for i in result.issues)


def test_local_code_condition_is_unmapped_visible_and_counted() -> None:
    result = bundle_to_charts(ex.examples()["local_code_condition"])
    (cond,) = result.charts[0].conditions
    assert cond.icd10_code is None and cond.coding_status is CodingStatus.unmapped
    assert cond.codings[0].code == "DX-0042" and "未映射" in cond.code_label
    assert result.summary()["unmapped"] == {"conditions": 1, "procedures": 0}
    assert any(i.kind == "unmapped" for i in result.issues)


def test_snomed_only_procedure_maps_to_icd9cm3() -> None:
    (chart,) = bundle_to_charts(ex.examples()["procedure_snomed_only"]).charts
    (proc,) = chart.procedures
    assert proc.icd9cm3_code == "45.23" and proc.performed_at is not None
    assert proc.codings[0].code == "73761001"


def test_contained_medication_and_author_without_display() -> None:
    (chart,) = bundle_to_charts(ex.examples()["contained_medication"]).charts
    assert chart.medications[0].drug_name == "阿莫西林胶囊"
    (chart,) = bundle_to_charts(ex.examples()["composition_without_author_display"]).charts
    (note,) = chart.notes
    assert note.author is None and note.fhir_extra["author"] == [{"reference": "Practitioner/pr-1"}]


def test_types_we_do_not_map_are_kept_raw_and_reported() -> None:
    result = bundle_to_charts(ex.examples()["claim_eob_careplan"])
    assert result.raw_only() == {
        "Organization": 1,
        "Practitioner": 1,
        "Claim": 1,
        "ExplanationOfBenefit": 1,
        "CarePlan": 1,
    }
    assert {r.patient_id for r in result.raw} == {"syn-1"}
    assert sum(i.kind == "skipped" and "kept raw" in i.message for i in result.issues) == 5


def test_relative_reference_to_an_absent_encounter_is_kept_unresolved() -> None:
    (chart,) = bundle_to_charts(ex.examples()["relative_reference_outside"]).charts
    cond = next(c for c in chart.conditions if c.id == "cond-2")
    assert cond.encounter_id is None
    assert cond.fhir_extra["encounter"] == {"reference": "Encounter/not-here"}


def test_a_broken_urn_uuid_reference_names_entry_path_and_rule() -> None:
    bundle = ex.bundle(ex.condition_snomed())
    bundle["entry"][2]["resource"]["encounter"] = {
        "reference": "urn:uuid:00000000-0000-4000-8000-00000000dead"
    }
    with pytest.raises(InvalidFhir) as exc:
        bundle_to_charts(bundle)
    detail = exc.value.details[0]
    assert detail["field"] == "entry[2].resource.encounter.reference"
    assert "R4 Bundle" in detail["rule"]


def test_a_wrong_type_still_fails_with_entry_path_and_rule() -> None:
    bundle = ex.bundle(ex.medication_without_authored_on())
    bundle["entry"][2]["resource"]["authoredOn"] = "not a date"
    with pytest.raises(InvalidFhir) as exc:
        bundle_to_charts(bundle)
    assert exc.value.details[0]["field"].startswith("entry[2].resource.authoredOn")
    assert "StructureDefinition" in exc.value.details[0]["rule"]


def test_a_delete_in_a_batch_is_refused_not_applied() -> None:
    bundle = ex.bundle(ex.condition_snomed(), kind="batch")
    bundle["entry"].append({"request": {"method": "DELETE", "url": "Patient/syn-1"}})
    result = bundle_to_charts(bundle)
    assert result.summary()["refused"] == ["entry[3].request"]
    assert result.charts[0].conditions


def test_export_gives_back_what_was_received_unchanged() -> None:
    for name, bundle in ex.examples().items():
        result = bundle_to_charts(bundle)
        exported = chart_to_bundle(result.charts[0], result.raw)
        sent = sorted(json.dumps(e["resource"], sort_keys=True) for e in bundle["entry"])
        back = sorted(json.dumps(e["resource"], sort_keys=True) for e in exported["entry"])
        assert back == sent, name


# --- property: drop each optional element in turn ------------------------------------------------------
def _full() -> dict[str, Any]:
    return ex.bundle(
        ex.condition_snomed(),
        ex.observation_loinc_without_effective() | {"effectiveDateTime": "2020-03-02T09:20:00-05:00"},
        ex.procedure_snomed_only(),
        ex.medication_without_authored_on() | {"authoredOn": "2020-03-02T09:25:00-05:00"},
        ex.composition_without_author_display(),
        *ex.unmapped_types(),
    )


def _optional_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of elements R4 lets be absent in our examples (everything but the ids, types, references and
    the elements R4 requires: status, intent, class, code of Observation, date/title/type of Composition)."""
    required = {
        "resourceType",
        "id",
        "status",
        "intent",
        "class",
        "subject",
        "patient",
        "reference",
        "url",
        "method",
        "fullUrl",
        "resource",
        "request",
        "type",
        "use",
        "created",
        "provider",
        "insurer",
        "outcome",
        "priority",
        "insurance",
        "date",
        "author",
        "medicationCodeableConcept",
        "title",
        "div",
        "system",
        "code",
        "category",
    }
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, sub in value.items():
            if key not in required:
                found.append((*path, key))
            if key in ("resource", "entry") or key not in required:
                found.extend(_optional_paths(sub, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_optional_paths(item, (*path, index)))
    return found


_PATHS = [p for p in _optional_paths(_full()) if len(p) >= 4 and p[2] == "resource"]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(_PATHS))
def test_dropping_any_optional_element_still_imports_with_nothing_else_lost(path: tuple[Any, ...]) -> None:
    bundle = copy.deepcopy(_full())
    parent: Any = bundle
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    result = bundle_to_charts(bundle)
    assert len(result.charts) == 1
    assert len(result.raw) == len(bundle["entry"])
    exported = chart_to_bundle(result.charts[0], result.raw)
    assert sorted(json.dumps(e["resource"], sort_keys=True) for e in exported["entry"]) == sorted(
        json.dumps(e["resource"], sort_keys=True) for e in bundle["entry"]
    )


# --- the store: raw resources in the import's transaction, versions appended, export round trip --------
def test_import_stores_raw_resources_and_exports_them_back(db: Database) -> None:
    service = PatientService(db, system_principal())
    bundle = ex.examples()["claim_eob_careplan"]
    result = service.import_fhir(bundle)
    assert result.raw_added == len(bundle["entry"])
    exported = service.export_fhir("syn-1")
    assert sorted(json.dumps(e["resource"], sort_keys=True) for e in exported["entry"]) == sorted(
        json.dumps(e["resource"], sort_keys=True) for e in bundle["entry"]
    )
    again = service.import_fhir(bundle)
    assert again.raw_added == 0 and again.raw_unchanged == len(bundle["entry"])


def test_raw_resources_are_never_overwritten(db: Database) -> None:
    service = PatientService(db, system_principal())
    bundle = ex.examples()["claim_eob_careplan"]
    service.import_fhir(bundle)
    changed = copy.deepcopy(bundle)
    claim = next(e["resource"] for e in changed["entry"] if e["resource"]["resourceType"] == "Claim")
    claim["status"] = "cancelled"
    assert service.import_fhir(changed).raw_added == 1
    with db.session() as session:
        history = FhirRawRepository(session).history("syn-1", "Claim", "claim-1")
    assert [(h.version, h.body["status"]) for h in history] == [(1, "active"), (2, "cancelled")]


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(args)
    out, _err = capsys.readouterr()
    return int(done.value.code or 0), out


def test_cli_imports_and_counts_unmapped_in_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps(ex.examples()["local_code_condition"]), encoding="utf-8")
    assert _run(["fhir", "import", str(path), "--profile", STRICT], capsys)[0] != 0
    code, out = _run(["fhir", "import", str(path), "--json"], capsys)
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["unmapped"] == {"conditions": 1, "procedures": 0} and summary["profile"] == "r4"
    assert summary["raw"]["kept"] == 3


def test_cli_exits_non_zero_when_an_entry_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = ex.bundle(ex.condition_snomed(), kind="batch")
    bundle["entry"].append({"request": {"method": "DELETE", "url": "Patient/syn-1"}})
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    assert _run(["fhir", "import", str(path)], capsys)[0] == 1
