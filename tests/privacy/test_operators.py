from __future__ import annotations

import re
from datetime import date

import pytest

from medfusion.privacy import analyze
from medfusion.privacy.date_shift import shift_date
from medfusion.privacy.operators import Mode, age_band
from medfusion.privacy.pseudonyms import Pseudonymizer
from medfusion.privacy.recognizers.cards import luhn_ok
from medfusion.privacy.service import Deidentifier, ReversibleSession
from medfusion.record.id_card import is_valid_id_number, parse_id_number

KEY = bytes(range(32))
TEXT = "患者张三，男，63岁，身份证号11010519491231002X，电话138-1234-5678，于2024年3月1日入院，3月5日出院。"


def test_tag_mode_replaces_with_type_tags() -> None:
    out = Deidentifier(Mode.tag).text(TEXT).text
    assert out == "患者[姓名]，男，63岁，身份证号[身份证号]，电话[电话]，于[日期]入院，[日期]出院。"


def test_mask_keeps_length() -> None:
    out = Deidentifier(Mode.mask).text(TEXT).text
    assert len(out) == len(TEXT) and "张三" not in out and "*" * 18 in out


def test_generalize_keeps_year_district_and_age_band() -> None:
    text = "患者李四，女，93岁，住址上海市静安区南京西路1号，于2024年3月1日入院。"
    out = Deidentifier(Mode.generalize).text(text).text
    assert out == "患者[姓名]，女，90岁以上，住址上海市静安区，于2024年入院。"


def test_pseudonyms_are_consistent_across_documents_and_keys_matter() -> None:
    a, b = Deidentifier(Mode.pseudo, KEY), Deidentifier(Mode.pseudo, KEY)
    first = a.text("家属张三电话13812345678").text
    second = b.text("联系人：张三，电话13812345678").text
    name = re.search(r"家属(\S{2})电话", first).group(1)  # type: ignore[union-attr]
    assert name in second and name != "张三"
    other = Deidentifier(Mode.pseudo, bytes(32)).text("家属张三电话13812345678").text
    assert other != first


def test_surrogates_keep_their_shape() -> None:
    p = Pseudonymizer(KEY)
    surrogate = p.id_number("11010519491231002X")
    parsed = parse_id_number(surrogate)
    assert is_valid_id_number(surrogate) and parsed.birth_date.year == 1949 and parsed.sex == "female"
    assert surrogate != "11010519491231002X"
    phone = p.phone("138-1234-5678")
    assert re.fullmatch(r"138-\d{4}-\d{4}", phone) and phone != "138-1234-5678"
    landline = p.phone("021-62345678")
    assert landline.startswith("021-") and len(landline) == 12
    card = p.bank_card("6222 0212 3456 7890 128")
    assert luhn_ok(card.replace(" ", "")) and card.startswith("6222 02")
    assert len(p.name("欧阳娜娜")) == 3 and len(p.name("张三")) == 2


def test_dates_of_one_patient_move_together() -> None:
    p = Pseudonymizer(KEY)
    offset = p.date_offset("P0000001")
    assert offset != 0 and offset == p.date_offset("P0000001")
    out = Deidentifier(Mode.pseudo, KEY).text(TEXT, subject="P0000001").text
    dates = re.findall(r"\d{4}年\d{1,2}月\d{1,2}日|\d{1,2}月\d{1,2}日", out)
    admitted = date.fromisoformat(
        re.sub(
            r"(\d{4})年(\d{1,2})月(\d{1,2})日", lambda m: f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}", dates[0]
        )
    )
    assert (admitted - date(2024, 3, 1)).days == offset


@pytest.mark.parametrize(
    "text, days, expected",
    [
        ("2024-12-31", 10, "2025-01-10"),
        ("2024年3月1日", -1, "2024年2月29日"),
        ("3月1日", 1, "3月2日"),
        ("2024/3/1", 30, "2024/3/31"),
        ("20240301", 365, "20250301"),
        ("2024-03-05 14:30", 1, "2024-03-06 14:30"),
    ],
)
def test_date_shift_keeps_the_written_shape(text: str, days: int, expected: str) -> None:
    assert shift_date(text, days) == expected


def test_age_bands() -> None:
    assert [age_band(a) for a in (0, 4, 67, 89, 90, 104)] == [
        "0-4岁",
        "0-4岁",
        "65-69岁",
        "85-89岁",
        "90岁以上",
        "90岁以上",
    ]


def test_reversible_session_restores_the_answer() -> None:
    session = ReversibleSession(KEY)
    outgoing = session.protect(TEXT, subject="P1")
    assert "张三" not in outgoing and "138-1234-5678" not in outgoing
    answer = f"建议：{outgoing[:10]}…复查。"
    assert session.restore(answer) == f"建议：{TEXT[:10]}…复查。"
    assert session.restore(outgoing) == TEXT


def test_no_structured_identifier_survives_tag_mode() -> None:
    out = Deidentifier(Mode.tag).text(TEXT).text
    assert not [s for s in analyze(out) if s.type.value in ("ID_NUMBER", "PHONE", "DATE")]
