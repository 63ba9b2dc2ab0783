from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from medfusion.cli.main import main
from medfusion.record.id_card import is_valid_id_number
from medfusion.record.models import PatientChart
from medfusion.synth import generate_population, generate_resident
from medfusion.synth.labs import ckd_epi_2009, creatinine_for_egfr
from medfusion.synth.population import REFERENCE_DATE

EIGHTEEN = re.compile(r"(?<![0-9])\d{17}[0-9Xx](?![0-9])")


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as done:
        main(args)
    return int(done.value.code or 0)


def test_same_seed_and_size_give_identical_bytes(tmp_path: Path) -> None:
    for fmt in ("jsonl", "fhir"):
        a, b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
        assert (
            _run(["synth", "population", "--size", "25", "--seed", "3", "--format", fmt, "--out", str(a)])
            == 0
        )
        assert (
            _run(["synth", "population", "--size", "25", "--seed", "3", "--format", fmt, "--out", str(b)])
            == 0
        )
        assert a.read_bytes() == b.read_bytes()
        assert len(a.read_text(encoding="utf-8").splitlines()) == 25


def test_different_seeds_differ() -> None:
    assert generate_resident(1, 0) != generate_resident(2, 0)


def test_any_slice_equals_the_same_slice_of_the_whole() -> None:
    whole = list(generate_population(30, seed=5))
    assert list(generate_population(10, seed=5, start=20)) == whole[20:]


def test_only_valid_id_numbers_are_18_digit_numbers() -> None:
    for chart in generate_population(200, seed=11):
        text = chart.model_dump_json()
        for found in EIGHTEEN.findall(text):
            assert is_valid_id_number(found), found
        assert chart.patient.id_number and is_valid_id_number(chart.patient.id_number)


@pytest.fixture(scope="module")
def population() -> list[PatientChart]:
    return list(generate_population(1500, seed=2025))


def _has(chart: PatientChart, code: str) -> bool:
    return any(c.icd10_code == code for c in chart.conditions)


def _values(chart: PatientChart, name: str) -> list[float]:
    return [o.value for o in chart.observations if o.name == name and o.value is not None]


def test_diabetics_have_raised_glucose_and_hba1c(population: list[PatientChart]) -> None:
    diabetics = [c for c in population if _has(c, "E11.900")]
    assert diabetics
    for chart in diabetics:
        assert all(v >= 6.5 for v in _values(chart, "糖化血红蛋白"))
        assert all(v >= 6.8 for v in _values(chart, "空腹血糖"))


def test_ckd_lowers_egfr_and_egfr_follows_creatinine(population: list[PatientChart]) -> None:
    for chart in population:
        age = REFERENCE_DATE.year - chart.patient.birth_date.year
        by_time: dict[object, dict[str, float]] = {}
        for o in chart.observations:
            if o.name in ("肌酐", "估算肾小球滤过率(CKD-EPI)") and o.value is not None:
                by_time.setdefault(o.effective_at, {})[o.name] = o.value
        for pair in by_time.values():
            egfr = ckd_epi_2009(pair["肌酐"], age, chart.patient.sex.value)
            assert abs(egfr - pair["估算肾小球滤过率(CKD-EPI)"]) < 0.06 * egfr + 2
        if _has(chart, "N18.300"):
            assert all(v < 64 for v in _values(chart, "估算肾小球滤过率(CKD-EPI)"))


def test_prevalence_is_in_the_published_range(population: list[PatientChart]) -> None:
    adults = [c for c in population if (REFERENCE_DATE - c.patient.birth_date).days >= 18 * 365]
    share = {
        code: sum(_has(c, code) for c in adults) / len(adults)
        for code in ("I10.x00x002", "E11.900", "J44.900")
    }
    assert 0.18 <= share["I10.x00x002"] <= 0.36  # adult hypertension ≈ 23–28%
    assert 0.07 <= share["E11.900"] <= 0.18  # adult diabetes ≈ 11–13%
    assert 0.03 <= share["J44.900"] <= 0.14  # adult COPD ≈ 8.6%


def test_age_structure_matches_shanghai_census(population: list[PatientChart]) -> None:
    ages = [(REFERENCE_DATE - c.patient.birth_date).days // 365 for c in population]
    assert 0.19 <= sum(a >= 60 for a in ages) / len(ages) <= 0.28
    males = sum(c.patient.sex.value == "male" for c in population) / len(population)
    assert 0.47 <= males <= 0.57


def test_everyone_has_an_encounter_vitals_and_a_note(population: list[PatientChart]) -> None:
    for chart in population[:300]:
        assert chart.encounters and chart.notes
        assert any(o.category.value == "vital-signs" for o in chart.observations)


def test_notes_quote_the_recorded_numbers(population: list[PatientChart]) -> None:
    checked = 0
    for chart in population[:200]:
        for note in chart.notes:
            if note.note_type.value != "门诊病历":
                continue
            encounter = note.encounter_id
            for o in chart.observations:
                if o.encounter_id == encounter and o.name == "收缩压":
                    assert f"{o.value:g}/" in note.text
                    checked += 1
    assert checked > 100


def test_ckd_epi_2009_worked_example() -> None:
    # Worked by hand from the published equation (Levey 2009, Table 2):
    # man, 60 y, Scr 1.0 mg/dL (88.4 μmol/L): 141 × (1.0/0.9)^-1.209 × 0.993^60 = 141 × 0.8804 × 0.6561 ≈ 81.4
    assert ckd_epi_2009(88.4, 60, "male") == pytest.approx(81.4, abs=0.1)
    # woman, 60 y, Scr 0.7 mg/dL (61.88 μmol/L) = κ, so both ratio terms are 1: 141 × 1.018 × 0.6561 ≈ 94.2
    assert ckd_epi_2009(61.88, 60, "female") == pytest.approx(94.2, abs=0.1)


@pytest.mark.parametrize("egfr", [30.0, 45.0, 59.0])
def test_creatinine_inversion_round_trips(egfr: float) -> None:
    for sex in ("male", "female"):
        assert ckd_epi_2009(creatinine_for_egfr(egfr, 70, sex), 70, sex) == pytest.approx(egfr, rel=1e-6)


def test_id_numbers_are_unique_in_a_population() -> None:
    from medfusion.synth.population import _books, _identity, unique_sequence

    size = 60_000
    unique_sequence(404, size - 1)
    book = _books[404]
    assert len(book.used) == size  # every (address code, birth date, sequence) triple once
    drawn = [_identity(random.Random(f"medfusion-synth:404:{i}")).sequence for i in range(size)]
    assert (
        sum(a != b for a, b in zip(drawn, book.final, strict=True)) >= 1
    )  # collisions occurred and were resolved
