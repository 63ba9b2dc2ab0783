from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medfusion.record.id_card import (
    IdNumberError,
    check_character,
    is_valid_id_number,
    make_id_number,
    parse_id_number,
)


def test_gb11643_1999_worked_example_beijing_chaoyang_female() -> None:
    # GB 11643-1999 example: 北京市朝阳区, born 1949-12-31, sequence 002 (even → female), check X.
    parsed = parse_id_number("11010519491231002X")
    assert parsed.region_code == "110105"
    assert parsed.birth_date == date(1949, 12, 31)
    assert parsed.sex == "female"
    assert check_character("11010519491231002") == "X"


def test_gb11643_1999_worked_example_guangdong_male() -> None:
    # GB 11643-1999 example: 广东省汕头市潮阳县, born 1880-01-01, sequence 001 (odd → male), check 4.
    parsed = parse_id_number("440524188001010014")
    assert parsed.birth_date == date(1880, 1, 1)
    assert parsed.sex == "male"


def test_lowercase_x_is_accepted_and_normalised() -> None:
    assert parse_id_number("11010519491231002x").number == "11010519491231002X"


@pytest.mark.parametrize(
    "number, reason",
    [
        ("110105194912310021", "校验码"),  # wrong check character
        ("11010519491332002X", "出生日期"),  # month 13
        ("11010519490230002X", "出生日期"),  # 30 February
        ("1101051949123100", "17位"),  # too short
        ("11010520991231002X", "出生日期"),  # born in the future
        ("01010519491231002X", "地址码"),
    ],
)
def test_invalid_numbers_are_rejected_with_a_reason(number: str, reason: str) -> None:
    with pytest.raises(IdNumberError, match=reason):
        parse_id_number(number)


birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2024, 12, 31))


@given(
    birth=birth_dates, sequence=st.integers(0, 999), region=st.sampled_from(["310106", "310115", "320500"])
)
def test_made_numbers_parse_back(birth: date, sequence: int, region: str) -> None:
    number = make_id_number(region, birth, sequence)
    parsed = parse_id_number(number)
    assert (parsed.region_code, parsed.birth_date) == (region, birth)
    assert parsed.sex == ("male" if sequence % 2 else "female")


@given(birth=birth_dates, sequence=st.integers(0, 999), position=st.integers(0, 16), delta=st.integers(1, 9))
def test_any_single_digit_substitution_is_detected(
    birth: date, sequence: int, position: int, delta: int
) -> None:
    # ISO 7064 MOD 11-2 detects every single-character substitution.
    number = make_id_number("310106", birth, sequence)
    digit = (int(number[position]) + delta) % 10
    mutated = number[:position] + str(digit) + number[position + 1 :]
    assert mutated[:17] == number[:17] or check_character(mutated[:17]) != number[17]


@given(st.text(max_size=30))
def test_parser_never_crashes_on_arbitrary_text(text: str) -> None:
    assert is_valid_id_number(text) in (True, False)
