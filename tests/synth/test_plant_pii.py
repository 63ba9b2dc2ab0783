from __future__ import annotations

import re

import pytest

from medfusion.record.id_card import is_valid_id_number
from medfusion.synth import generate_record, generate_resident
from medfusion.synth.pii import HERB_DECOYS, mark, unmark, unmark_sections

EIGHTEEN = re.compile(r"(?<![0-9])\d{17}[0-9Xx](?![0-9])")
TYPES = {"PERSON", "ID_NUMBER", "PHONE", "ADDRESS", "HOSPITAL_ID", "INSURANCE_ID", "EMAIL", "DATE", "AGE"}


@pytest.fixture(scope="module")
def records() -> list[dict]:  # type: ignore[type-arg]
    return [generate_record(31, i, plant_pii=True) for i in range(150)]


def test_unmark_gives_offsets_into_the_clean_text() -> None:
    text, spans = unmark(f"患者{mark('PERSON', '张三')}于{mark('DATE', '2024年3月1日')}就诊")
    assert text == "患者张三于2024年3月1日就诊"
    assert [(s["start"], s["end"], s["type"]) for s in spans] == [(2, 4, "PERSON"), (5, 14, "DATE")]
    sections, spans = unmark_sections([("主诉", "头晕"), (None, f"家属{mark('PERSON', '李四')}")])
    joined = "\n".join(f"{t}：{x}" if t else x for t, x in sections)
    assert joined[spans[0]["start"] : spans[0]["end"]] == "李四"  # type: ignore[misc]


def test_every_gold_span_points_at_its_text(records: list[dict]) -> None:  # type: ignore[type-arg]
    seen: set[str] = set()
    for record in records:
        for note in record["notes"]:
            last_end = 0
            for span in note["pii_spans"]:
                assert note["text"][span["start"] : span["end"]] == span["text"]
                assert span["type"] in TYPES and span["start"] >= last_end
                last_end = span["end"]
                seen.add(span["type"])
    assert TYPES - {"AGE", "EMAIL"} <= seen  # AGE (>89) and EMAIL are rarer but appear in larger samples


def test_planted_identifiers_are_the_patients_own(records: list[dict]) -> None:  # type: ignore[type-arg]
    for record in records:
        patient = record["patient"]
        for note in record["notes"]:
            for span in note["pii_spans"]:
                if span["type"] == "ID_NUMBER":
                    assert span["text"] == patient["id_number"] and is_valid_id_number(span["text"])
                if span["type"] == "PERSON" and span["text"] != patient["name"]:
                    assert 2 <= len(span["text"]) <= 4  # a relative


def test_decoys_are_present_and_never_labelled(records: list[dict]) -> None:  # type: ignore[type-arg]
    herbs = wrong_ids = phone_shaped = 0
    for record in records:
        for note in record["notes"]:
            labelled = {(s["start"], s["end"]) for s in note["pii_spans"]}
            text = note["text"]
            for match in EIGHTEEN.finditer(text):
                if not is_valid_id_number(match.group()):
                    wrong_ids += 1
                    assert (match.start(), match.end()) not in labelled
            for match in re.finditer(r"HBV-DNA (1[3-9]\d{9}) IU/mL", text):
                phone_shaped += 1
                assert (match.start(1), match.end(1)) not in labelled
            herbs += sum(herb in text for herb in HERB_DECOYS)
    assert herbs and wrong_ids and phone_shaped


def test_planting_changes_nothing_but_the_notes() -> None:
    for index in range(20):
        plain = generate_resident(31, index).model_dump(mode="json")
        planted = generate_record(31, index, plant_pii=True)
        for key in plain:
            if key != "notes":
                assert planted[key] == plain[key]
        assert len(planted["notes"]) == len(plain["notes"])


def test_without_planting_there_are_no_spans_and_no_fake_ids() -> None:
    for index in range(50):
        record = generate_record(31, index)
        assert all("pii_spans" not in note for note in record["notes"])
        for note in record["notes"]:
            assert all(is_valid_id_number(m) for m in EIGHTEEN.findall(note["text"]))
