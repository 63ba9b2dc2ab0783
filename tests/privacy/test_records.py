from __future__ import annotations

from medfusion.privacy.kanonymity import k_anonymity, quasi_identifiers
from medfusion.privacy.pseudonyms import Pseudonymizer
from medfusion.privacy.records import deidentify_chart
from medfusion.record.id_card import parse_id_number
from medfusion.record.models import PatientChart
from medfusion.synth import generate_population


def test_a_chart_is_pseudonymised_consistently(demo_charts: list[PatientChart]) -> None:
    p = Pseudonymizer(b"k" * 32)
    for chart in demo_charts[:15]:
        result = deidentify_chart(chart, p)
        new = result.chart
        original = chart.patient
        assert new.patient.name != original.name and new.patient.id != original.id
        dumped = new.model_dump_json()
        for secret in (original.name, original.id_number, original.phone):
            assert secret and secret not in dumped
        offset = result.date_offset_days
        assert (new.patient.birth_date - original.birth_date).days == offset
        assert parse_id_number(new.patient.id_number or "").birth_date == new.patient.birth_date
        for old, fresh in zip(chart.encounters, new.encounters, strict=True):
            assert (fresh.admitted_at - old.admitted_at).days == offset
        assert deidentify_chart(chart, p).chart == new  # deterministic for the same key


def test_fhir_extra_is_removed_and_counted(demo_charts: list[PatientChart]) -> None:
    chart = demo_charts[0].model_copy(deep=True)
    chart.patient.fhir_extra = {"identifier": [{"system": "urn:mrn", "value": "MRN-1"}]}
    result = deidentify_chart(chart, Pseudonymizer(b"k" * 32))
    assert result.removed_fhir_extra == 1 and "MRN-1" not in result.chart.model_dump_json()


def test_k_anonymity_suppresses_small_classes() -> None:
    rows = [{"age_band": "60-64岁", "sex": "male", "district": "静安区"}] * 5 + [
        {"age_band": "90岁以上", "sex": "female", "district": "崇明区"}
    ]
    report = k_anonymity(rows, ["age_band", "sex", "district"], k=5)
    assert not report.is_k_anonymous and report.records_in_small_classes == 1
    assert report.released[-1] == {"age_band": "*", "sex": "*", "district": "*"}
    assert report.released[0] == rows[0]


def test_quasi_identifiers_of_a_population() -> None:
    charts = list(generate_population(300, seed=5))
    report = k_anonymity([quasi_identifiers(c) for c in charts], ["age_band", "sex", "district"], k=3)
    assert report.records == 300 and report.classes > 10
    assert sum(1 for r in report.released if r["sex"] == "*") == report.records_in_small_classes


def test_a_fhir_bundle_is_pseudonymised_through_the_record(demo_charts: list[PatientChart]) -> None:
    from medfusion.interop.fhir import bundle_to_charts, chart_to_bundle
    from medfusion.privacy.records import deidentify_bundle

    chart = demo_charts[4]
    out = deidentify_bundle(chart_to_bundle(chart), Pseudonymizer(b"k" * 32))
    text = str(out)
    assert chart.patient.name not in text and (chart.patient.id_number or "x") not in text
    again = bundle_to_charts(out).charts[0]
    assert len(again.observations) == len(chart.observations) and again.patient.name != chart.patient.name
