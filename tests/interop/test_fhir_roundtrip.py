from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import given
from hypothesis import strategies as st

from medfusion.errors import InvalidFhir, UnknownUnit, UnsupportedFhirVersion
from medfusion.interop.fhir import bundle_for, bundle_to_charts, chart_to_bundle
from medfusion.interop.fhir.narrative import div_to_text, text_to_div
from medfusion.record.models import PatientChart


def _wire(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(data, ensure_ascii=False))


def test_ours_to_fhir_to_ours_is_lossless(demo_charts: list[PatientChart]) -> None:
    for chart in demo_charts:
        bundle = _wire(chart_to_bundle(chart))
        result = bundle_to_charts(bundle)
        assert result.issues == []
        assert result.charts == [chart]


def test_exported_bundles_are_valid_r4_and_say_their_version(demo_charts: list[PatientChart]) -> None:
    bundle = bundle_for(demo_charts[:5])
    Bundle.model_validate(bundle)
    assert {"system": "http://hl7.org/fhir/FHIR-version", "code": "4.0.1", "display": "FHIR R4"} in bundle[
        "meta"
    ]["tag"]
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(urls) == len(set(urls)) and all(u.startswith("urn:uuid:") for u in urls)


def test_export_is_deterministic(demo_charts: list[PatientChart]) -> None:
    assert json.dumps(chart_to_bundle(demo_charts[0])) == json.dumps(chart_to_bundle(demo_charts[0]))


def _foreign_bundle() -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [
                        {"system": "urn:oid:1.2.156.112604.1.2.1", "value": "MRN-778899"},
                        {"system": "urn:oid:2.16.156.10011.1.3", "value": "11010519491231002X"},
                    ],
                    "name": [{"use": "official", "text": "李秀英", "family": "李", "given": ["秀英"]}],
                    "gender": "female",
                    "birthDate": "1949-12-31",
                    "maritalStatus": {"text": "已婚"},
                },
            },
            {
                "fullUrl": "urn:uuid:22222222-2222-4222-8222-222222222222",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "laboratory",
                                }
                            ]
                        }
                    ],
                    "code": {
                        "coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}],
                        "text": "血糖",
                    },
                    "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
                    "effectiveDateTime": "2024-03-01T08:00:00+08:00",
                    "valueQuantity": {
                        "value": 7.8,
                        "unit": "mmol/L",
                        "system": "http://unitsofmeasure.org",
                        "code": "mmol/L",
                    },
                    "note": [{"text": "空腹"}],
                },
            },
            {
                "fullUrl": "urn:uuid:33333333-3333-4333-8333-333333333333",
                "resource": {"resourceType": "Practitioner", "name": [{"text": "王医生"}]},
            },
        ],
    }


def test_unmodelled_elements_are_kept_and_reported() -> None:
    result = bundle_to_charts(_foreign_bundle())
    chart = result.charts[0]
    assert chart.patient.id_number == "11010519491231002X"
    assert chart.patient.fhir_extra["maritalStatus"] == {"text": "已婚"}
    assert chart.patient.fhir_extra["identifier"] == [
        {"system": "urn:oid:1.2.156.112604.1.2.1", "value": "MRN-778899"}
    ]
    assert chart.observations[0].fhir_extra["note"] == [{"text": "空腹"}]
    kinds = {(i.kind, i.path.split(".")[-1]) for i in result.issues}
    assert ("kept", "maritalStatus") in kinds and ("kept", "note") in kinds
    assert any(i.kind == "skipped" and "Practitioner" in i.message for i in result.issues)
    exported = chart_to_bundle(chart)
    patient = exported["entry"][0]["resource"]
    assert patient["maritalStatus"] == {"text": "已婚"}
    assert {"system": "urn:oid:1.2.156.112604.1.2.1", "value": "MRN-778899"} in patient["identifier"]
    again = bundle_to_charts(_wire(exported))
    assert again.charts == [chart]


def test_partially_modelled_elements_are_reported_not_silently_dropped() -> None:
    bundle = _foreign_bundle()
    bundle["entry"][0]["resource"]["name"][0]["prefix"] = ["老"]
    result = bundle_to_charts(bundle)
    dropped = [i.path for i in result.issues if i.kind == "dropped"]
    assert "entry[0].resource.name[0].prefix" in dropped
    with pytest.raises(InvalidFhir, match="严格模式"):
        bundle_to_charts(bundle, strict=True)


def test_a_different_fhir_version_is_refused() -> None:
    bundle = _foreign_bundle()
    bundle["meta"] = {"tag": [{"system": "http://hl7.org/fhir/FHIR-version", "code": "5.0.0"}]}
    with pytest.raises(UnsupportedFhirVersion):
        bundle_to_charts(bundle)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (
            lambda b: b["entry"][0]["resource"].__setitem__("birthDate", "1949-02-30"),
            "entry[0].resource.birthDate",
        ),
        (lambda b: b["entry"][0]["resource"].__setitem__("favouriteColour", "red"), "favouriteColour"),
        (
            lambda b: b["entry"][0]["resource"]["identifier"][1].__setitem__("value", "110105194912310021"),
            "id_number",
        ),
        (lambda b: b.__setitem__("resourceType", "Patient"), "resourceType"),
    ],
)
def test_malformed_fhir_is_a_typed_error_naming_the_field(mutate: Any, field: str) -> None:
    bundle = _foreign_bundle()
    mutate(bundle)
    with pytest.raises(InvalidFhir) as exc:
        bundle_to_charts(bundle)
    assert field in json.dumps(exc.value.details, ensure_ascii=False) or field in exc.value.message


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (
            lambda b: b["entry"][1]["resource"]["valueQuantity"].update(unit="bananas", code="bananas"),
            "valueQuantity",
        ),
        (
            lambda b: b["entry"][1]["resource"]["subject"].__setitem__("reference", "Patient/nobody"),
            "subject",
        ),
    ],
)
def test_what_only_the_strict_profile_refuses(mutate: Any, field: str) -> None:
    """A unit outside our table and a reference to a Patient outside the Bundle are valid R4: the default
    profile keeps the resource (the quantity verbatim / the whole resource raw); medfusion-strict refuses."""
    bundle = _foreign_bundle()
    mutate(bundle)
    with pytest.raises(InvalidFhir) as exc:
        bundle_to_charts(bundle, profile="medfusion-strict")
    assert field in json.dumps(exc.value.details, ensure_ascii=False) or field in exc.value.message
    result = bundle_to_charts(bundle)
    assert any(field in i.path for i in result.issues)
    assert {"Patient", "Observation"} <= {r.resource_type for r in result.raw}


def test_unknown_unit_error_keeps_its_code_in_the_strict_profile() -> None:
    bundle = _foreign_bundle()
    bundle["entry"][1]["resource"]["valueQuantity"] = {"value": 1, "unit": "bananas"}
    with pytest.raises(InvalidFhir) as exc:
        bundle_to_charts(bundle, profile="medfusion-strict")
    assert exc.value.code == UnknownUnit.code


def test_unknown_unit_is_kept_verbatim_not_refused() -> None:
    bundle = _foreign_bundle()
    bundle["entry"][1]["resource"]["valueQuantity"] = {"value": 1, "unit": "bananas"}
    (chart,) = bundle_to_charts(bundle).charts
    (obs,) = chart.observations
    assert obs.value is None and obs.fhir_extra["valueQuantity"] == {"value": 1, "unit": "bananas"}
    assert chart_to_bundle(chart)["entry"][1]["resource"]["valueQuantity"] == {"value": 1, "unit": "bananas"}


def test_condition_without_icd10_is_refused_in_the_strict_profile() -> None:
    bundle = _foreign_bundle()
    bundle["entry"].append(
        {
            "resource": {
                "resourceType": "Condition",
                "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]},
            }
        }
    )
    with pytest.raises(InvalidFhir, match=r"code\.coding"):
        bundle_to_charts(bundle, profile="medfusion-strict")


def test_relative_references_resolve_by_type_and_id(demo_charts: list[PatientChart]) -> None:
    bundle = _wire(chart_to_bundle(demo_charts[1]))
    for entry in bundle["entry"]:
        entry.pop("fullUrl")
    assert bundle_to_charts(bundle).charts == [demo_charts[1]]


def test_import_does_not_mutate_its_input() -> None:
    bundle = _foreign_bundle()
    before = copy.deepcopy(bundle)
    bundle_to_charts(bundle)
    assert bundle == before


@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"), max_size=200)
)
def test_note_text_survives_the_narrative(text: str) -> None:
    restored, flattened = div_to_text(text_to_div(text))
    assert restored == text and not flattened


def test_markup_in_foreign_narrative_is_flattened_and_reported() -> None:
    text, flattened = div_to_text(
        '<div xmlns="http://www.w3.org/1999/xhtml"><p>主诉：头晕</p><p>3天</p></div>'
    )
    assert flattened and text == "主诉：头晕\n3天\n"
