from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medfusion.privacy import analyze
from medfusion.privacy.entities import EntityType


def _types(text: str) -> dict[str, str]:
    return {s.text: s.type.value for s in analyze(text)}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("身份证号：11010519491231002X。", {"11010519491231002X": "ID_NUMBER"}),
        ("旧身份证号310106600503123已换证", {"310106600503123": "ID_NUMBER"}),
        ("电话138-1234-5678", {"138-1234-5678": "PHONE"}),
        ("电话 +86 138 1234 5678", {"+86 138 1234 5678": "PHONE"}),
        ("座机（021）6234 5678", {"（021）6234 5678": "PHONE"}),
        ("邮箱li.na@163.com", {"li.na@163.com": "EMAIL"}),
        ("IP 192.168.0.1 登录", {"192.168.0.1": "IP_ADDRESS"}),
        ("见https://a.example.cn/x?id=1。", {"https://a.example.cn/x?id=1": "URL"}),
        ("车牌沪A12345", {"沪A12345": "LICENSE_PLATE"}),
        ("卡号4111 1111 1111 1111", {"4111 1111 1111 1111": "BANK_CARD"}),
        ("住院号：ZY0012345", {"ZY0012345": "HOSPITAL_ID"}),
        ("医保卡号：8995162041", {"8995162041": "INSURANCE_ID"}),
        ("护照号码：E12345678", {"E12345678": "CERTIFICATE"}),
        ("QQ号：123456789", {"123456789": "SOCIAL_ID"}),
        ("患者女，92岁", {"92岁": "AGE"}),
        ("于2024年3月1日入院", {"2024年3月1日": "DATE"}),
    ],
)
def test_each_identifier_shape(text: str, expected: dict[str, str]) -> None:
    assert _types(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "标本条码：110105194912310021，请核对。",  # 18 digits, wrong check character
        "HBV-DNA 13500000000 IU/mL",  # a viral load shaped like a mobile number
        "中药：陈皮10g、黄芩9g、甘草6g、何首乌15g",  # herbs that begin with surnames
        "既往高血压病史10年，2011年诊断",  # a clinical term after a surname character; a bare year
        "患者于昨日出现发热，白细胞计数11.2×10^9/L",
        "版本号1.2.3.4.5",
        "患者男，89岁",  # 89 is not over 89
        "2024-02-30 不是日期",
    ],
)
def test_clinical_text_and_decoys_survive(text: str) -> None:
    assert analyze(text) == []


def test_names_known_from_the_record_are_found_anywhere() -> None:
    spans = analyze("今日张三诉头痛，张三之妻陪同。", known_names=["张三"])
    assert [s.text for s in spans] == ["张三", "张三"] and spans[0].type is EntityType.PERSON


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_analyzer_never_crashes_and_spans_are_sane(text: str) -> None:
    spans = analyze(text)
    last = 0
    for span in spans:
        assert 0 <= span.start < span.end <= len(text) and span.start >= last
        assert text[span.start : span.end] == span.text
        last = span.end
