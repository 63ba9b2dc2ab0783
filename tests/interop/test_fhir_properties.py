"""Property test: any valid chart survives ours → FHIR → ours unchanged, with no import issues."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medfusion.interop.fhir import bundle_to_charts, chart_to_bundle
from medfusion.record.id_card import make_id_number
from medfusion.record.models import NoteType, PatientChart
from medfusion.record.units import KNOWN_UNITS

cjk = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=1, max_size=4)
free_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00") | st.just("\n"),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() == s and s != "")
short = st.text(alphabet="ABCDEFGHJK0123456789-", min_size=1, max_size=8)
offsets = st.sampled_from([timezone(timedelta(hours=8)), UTC, timezone(timedelta(hours=-5))])


@st.composite
def times(draw: st.DrawFn, after: date) -> datetime:
    day = draw(st.dates(min_value=after, max_value=date(2025, 12, 31)))
    seconds = draw(st.integers(0, 86_399))
    return datetime(day.year, day.month, day.day, tzinfo=draw(offsets)) + timedelta(seconds=seconds)


@st.composite
def charts(draw: st.DrawFn) -> PatientChart:
    birth = draw(st.dates(min_value=date(1920, 1, 1), max_value=date(2020, 12, 31)))
    sex = draw(st.sampled_from(["male", "female", "other", "unknown"]))
    patient: dict[str, object] = {
        "id": "P" + draw(st.text("0123456789", min_size=1, max_size=6)),
        "name": draw(cjk) + draw(cjk),
        "sex": sex,
        "birth_date": birth.isoformat(),
    }
    if sex in ("male", "female") and draw(st.booleans()):
        seq = draw(st.integers(0, 499)) * 2 + (1 if sex == "male" else 0)
        patient["id_number"] = make_id_number("310106", birth, seq)
    if draw(st.booleans()):
        patient["phone"] = draw(st.sampled_from(["13800138000", "021-62345678", "+8613912345678"]))
    if draw(st.booleans()):
        patient["address"] = {k: draw(st.none() | cjk) for k in ("province", "city", "district", "line")}
    encounters = [
        {
            "id": f"E{i}",
            "encounter_class": draw(st.sampled_from(["outpatient", "inpatient", "emergency"])),
            "status": draw(st.sampled_from(["planned", "in-progress", "finished", "cancelled"])),
            "department": draw(cjk),
            "ward": draw(st.none() | cjk),
            "bed": draw(st.none() | short),
            "admitted_at": draw(times(birth)).isoformat(),
        }
        for i in range(draw(st.integers(0, 2)))
    ]
    enc = st.none() | st.sampled_from([e["id"] for e in encounters]) if encounters else st.none()
    observations = []
    for i in range(draw(st.integers(0, 3))):
        unit = draw(st.sampled_from(sorted(KNOWN_UNITS)))
        numeric = draw(st.booleans())
        low = draw(st.none() | st.floats(0, 50, allow_nan=False))
        observations.append(
            {
                "id": f"O{i}",
                "encounter_id": draw(enc),
                "category": draw(st.sampled_from(["laboratory", "vital-signs"])),
                "name": draw(cjk),
                "effective_at": draw(times(birth)).isoformat(),
                **(
                    {
                        "value": draw(st.floats(-1e6, 1e6, allow_nan=False)),
                        "unit": unit,
                        "reference_low": low,
                        "reference_high": None
                        if low is None
                        else low + draw(st.floats(0, 50, allow_nan=False)),
                    }
                    if numeric
                    else {"value_text": draw(free_text)}
                ),
            }
        )
    notes = [
        {
            "id": f"N{i}",
            "encounter_id": draw(enc),
            "note_type": draw(st.sampled_from([t.value for t in NoteType])),
            "author": draw(cjk),
            "written_at": draw(times(birth)).isoformat(),
            "title": draw(st.none() | free_text),
            "sections": [
                {"title": draw(st.none() | cjk), "text": draw(free_text)}
                for _ in range(draw(st.integers(1, 3)))
            ],
        }
        for i in range(draw(st.integers(0, 2)))
    ]
    allergies = [
        {
            "id": f"A{i}",
            "substance": draw(cjk),
            "reaction": draw(st.none() | cjk),
            "category": draw(st.sampled_from(["medication", "food", "environment", "biologic"])),
            "recorded_date": draw(st.none() | st.dates(min_value=birth, max_value=date(2025, 1, 1)).map(str)),
            "criticality": draw(st.none() | st.sampled_from(["low", "high", "unable-to-assess"])),
        }
        for i in range(draw(st.integers(0, 2)))
    ]
    immunizations = [
        {
            "id": f"I{i}",
            "vaccine_name": draw(cjk),
            "vaccine_code": draw(st.none() | short),
            "occurred_at": draw(times(birth)).isoformat(),
            "dose_number": draw(st.none() | st.integers(1, 5)),
            "lot_number": draw(st.none() | short),
        }
        for i in range(draw(st.integers(0, 2)))
    ]
    medications = [
        {
            "id": f"M{i}",
            "encounter_id": draw(enc),
            "drug_name": draw(cjk),
            "atc_code": draw(st.none() | st.just("C08CA01")),
            "route": draw(st.none() | cjk),
            "frequency": draw(st.none() | st.sampled_from(["QD", "BID", "Q8H", "PRN"])),
            "start": draw(times(birth)).isoformat(),
            **(
                {
                    "dose": draw(st.floats(0.01, 1000, allow_nan=False)),
                    "dose_unit": draw(st.sampled_from(["mg", "片", "μg"])),
                }
                if draw(st.booleans())
                else {}
            ),
        }
        for i in range(draw(st.integers(0, 2)))
    ]
    return PatientChart.model_validate(
        {
            "patient": patient,
            "encounters": encounters,
            "observations": observations,
            "notes": notes,
            "allergies": allergies,
            "immunizations": immunizations,
            "medications": medications,
        }
    )


@settings(
    max_examples=int(os.environ.get("MEDFUSION_FUZZ_EXAMPLES", "120")),
    deadline=None,
    derandomize=os.environ.get("MEDFUSION_FUZZ_EXAMPLES") is None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(chart=charts())
def test_any_valid_chart_round_trips_through_fhir(chart: PatientChart) -> None:
    bundle = json.loads(json.dumps(chart_to_bundle(chart), ensure_ascii=False))
    result = bundle_to_charts(bundle)
    assert result.issues == []
    assert result.charts == [chart]
