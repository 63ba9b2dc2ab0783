from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from medfusion.errors import UnknownUnit
from medfusion.record.id_card import make_id_number
from medfusion.record.models import (
    AbnormalFlag,
    ClinicalNote,
    Encounter,
    MedicationRequest,
    Observation,
    Patient,
    PatientChart,
)
from medfusion.record.surnames import split_name
from medfusion.record.units import ucum_code

ID_1960_M = make_id_number("310106", date(1960, 5, 3), 123)


def _fields(exc: ValidationError) -> str:
    return " ".join(f"{'.'.join(map(str, e['loc']))} {e['msg']}" for e in exc.errors())


def test_patient_accepts_valid_id_number_and_normalises_phone() -> None:
    p = Patient(
        id="P1",
        name="张三",
        sex="male",
        birth_date=date(1960, 5, 3),
        id_number=ID_1960_M,
        phone="138 0013 8000",
    )
    assert p.phone == "13800138000"


def test_id_number_with_bad_check_digit_names_the_field() -> None:
    bad = ID_1960_M[:-1] + ("0" if ID_1960_M[-1] != "0" else "1")
    with pytest.raises(ValidationError) as exc:
        Patient(id="P1", name="张三", sex="male", birth_date=date(1960, 5, 3), id_number=bad)
    assert "id_number" in _fields(exc.value) and "校验码" in _fields(exc.value)


def test_id_number_must_agree_with_birth_date_and_sex() -> None:
    with pytest.raises(ValidationError, match="出生日期"):
        Patient(id="P1", name="张三", sex="male", birth_date=date(1960, 5, 4), id_number=ID_1960_M)
    with pytest.raises(ValidationError, match="性别"):
        Patient(id="P1", name="张三", sex="female", birth_date=date(1960, 5, 3), id_number=ID_1960_M)


@pytest.mark.parametrize("birth", ["2999-01-01", "1700-01-01", "2023-02-29"])
def test_impossible_birth_dates_are_rejected(birth: str) -> None:
    with pytest.raises(ValidationError):
        Patient.model_validate({"id": "P1", "name": "张三", "sex": "male", "birth_date": birth})


def test_unknown_unit_is_rejected() -> None:
    with pytest.raises(ValidationError, match="未知单位"):
        Observation(
            id="o",
            category="laboratory",
            name="血糖",
            value=5.0,
            unit="furlongs",
            effective_at="2024-01-01T08:00",
        )
    with pytest.raises(UnknownUnit):
        ucum_code("mmol/dL")


def test_flag_is_derived_from_the_reference_range() -> None:
    high = Observation(
        id="o",
        category="laboratory",
        name="HbA1c",
        value=8.1,
        unit="%",
        reference_low=4,
        reference_high=6,
        effective_at="2024-01-01T08:00",
    )
    low = high.model_copy(update={"value": 3.2, "flag": None})
    low = Observation.model_validate(low.model_dump())
    assert high.flag is AbnormalFlag.high and high.is_abnormal
    assert low.flag is AbnormalFlag.low


def test_naive_times_are_shanghai_time() -> None:
    o = Observation(
        id="o", category="vital-signs", name="心率", value=70, unit="次/分", effective_at="2024-01-01T08:00"
    )
    assert o.effective_at.utcoffset().total_seconds() == 8 * 3600  # type: ignore[union-attr]


def test_encounter_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValidationError, match="discharged_at"):
        Encounter(
            id="e",
            encounter_class="inpatient",
            department="心内科",
            admitted_at="2024-01-05T08:00",
            discharged_at="2024-01-01T08:00",
        )


def test_medication_dose_needs_a_unit() -> None:
    with pytest.raises(ValidationError, match="dose_unit"):
        MedicationRequest(id="m", drug_name="氨氯地平", dose=5, start="2024-01-01T08:00")


def test_chart_rejects_events_before_birth_and_dangling_encounters() -> None:
    patient = {"id": "P1", "name": "张三", "sex": "male", "birth_date": "1990-01-01"}
    with pytest.raises(ValidationError, match="出生"):
        PatientChart.model_validate(
            {
                "patient": patient,
                "encounters": [
                    {
                        "id": "e",
                        "encounter_class": "outpatient",
                        "department": "全科",
                        "admitted_at": "1980-01-01T08:00",
                    }
                ],
            }
        )
    with pytest.raises(ValidationError, match="unknown encounter"):
        PatientChart.model_validate(
            {
                "patient": patient,
                "conditions": [{"id": "c", "encounter_id": "nope", "icd10_code": "I10", "name": "高血压"}],
            }
        )


def test_note_text_joins_sections_and_title_defaults_to_type() -> None:
    note = ClinicalNote(
        id="n",
        note_type="门诊病历",
        author="王医生",
        written_at="2024-01-01T08:00",
        sections=[{"title": "主诉", "text": "头晕3天"}, {"text": "附记"}],
    )
    assert note.text == "主诉：头晕3天\n附记"
    assert note.title == "门诊病历"


def test_unknown_fields_are_rejected_by_name() -> None:
    with pytest.raises(ValidationError, match="nickname"):
        Patient.model_validate(
            {"id": "P1", "name": "张三", "sex": "male", "birth_date": "1990-01-01", "nickname": "三儿"}
        )


@pytest.mark.parametrize(
    "name, family, given",
    [
        ("张三", "张", "三"),
        ("欧阳娜娜", "欧阳", "娜娜"),
        ("司马光", "司马", "光"),
        ("John Smith", "Smith", "John"),
    ],
)
def test_split_name(name: str, family: str, given: str) -> None:
    assert split_name(name) == (family, given)
