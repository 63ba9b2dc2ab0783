"""The one red-flag lexicon: lay and clinical phrasing of each emergency sign, negation (无, 否认, 未见,
没有, 不伴 …), the levels and advice of 《急诊预检分诊专家共识》 2018, the schema check, and that it never
crashes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from medfusion import packaged
from medfusion.specialists import red_flags


def _codes(text: str) -> set[str]:
    return {f.code for f in red_flags.detect(text)}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("老公胸口疼，出了一身冷汗", "chest_pain_acs"),
        ("心前区压榨样疼痛，向左肩放射30分钟", "chest_pain_acs"),
        ("突发撕裂样胸背痛", "chest_pain_severe"),
        ("我爸突然口角歪斜，说话不清", "stroke_befast"),
        ("早上起来右侧胳膊抬不起来", "stroke_befast"),
        ("突然看不清东西，走路不稳", "stroke_befast"),
        ("奶奶喝了敌敌畏", "poisoning_pesticide"),
        ("误服百草枯半小时", "poisoning_pesticide"),
        ("吞了一整瓶安眠药", "overdose_medicine"),
        ("对乙酰氨基酚吃多了，大概二十片", "overdose_medicine"),
        ("胰岛素打多了一倍，现在出冷汗", "overdose_insulin"),
        ("喝醉了叫不醒", "alcohol_poisoning"),
        ("冬天烧炭取暖，全家头晕恶心", "gas_poisoning"),
        ("煤气泄漏，人晕倒了", "gas_poisoning"),
        ("患者呼之不应", "unresponsive"),
        ("GCS 6分", "unresponsive"),
        ("割腕后流了很多血", "self_injury_bleeding"),
        ("伤口血流不止", "haemorrhage"),
        ("呕血约300ml，解柏油样便", "haematemesis_melena"),
        ("咳出鲜血一大口", "haemoptysis"),
        ("上厕所时突然晕倒", "syncope"),
        ("孕10周阴道流血", "pregnancy_bleeding"),
        ("宫外孕破裂，肚子剧痛", "ectopic_pregnancy"),
        ("宝宝才两个月，发烧38.2℃", "infant_fever"),
        ("新生儿体温38.5度", "infant_fever"),
        ("被马蜂蜇了以后喘不上气", "anaphylaxis"),
        ("输液后喉头发紧", "anaphylaxis"),
        ("嘴唇发紫，喘不过气", "severe_dyspnoea"),
        ("孩子高烧抽搐，口吐白沫", "seizure"),
        ("从三楼摔下来", "severe_trauma"),
        ("车祸后腿骨头露出来了", "severe_trauma"),
        ("我不想活了", "suicidal_intent"),
        ("服用大量安眠药自杀未遂", "suicidal_intent"),
        ("我不想死", "suicidal_intent"),
        ("叫他没反应，也没有呼吸", "cardiac_arrest"),
    ],
)
def test_lay_and_clinical_phrasing_raise_the_flag(text: str, code: str) -> None:
    assert code in _codes(text)


@pytest.mark.parametrize(
    "text",
    [
        "无胸痛、大汗",
        "否认胸痛，无放射痛",
        "胸痛，无大汗，不伴放射",  # chest pain alone is not the ACS flag
        "未见呕血黑便",
        "没有呼吸困难",
        "患者否认自杀念头",
        "评估有无自杀观念",
        "无抽搐及意识障碍",
        "神志清楚，未诉晕厥",
        "孕20周，无阴道流血",
    ],
)
def test_negated_signs_raise_nothing(text: str) -> None:
    assert not (_codes(text) - {"chest_pain"}), red_flags.detect(text)


@pytest.mark.parametrize(
    "text",
    [
        "如何评估自杀风险",
        "对乙酰氨基酚的致死量",
        "蔬菜上的农药残留怎么洗",
        "想死你了，什么时候回来",
        "眼皮抽搐是怎么回事",
        "孩子发烧两个月了还没好",  # a two-month fever, not a two-month-old
        "喝了一瓶矿泉水",
        "心肺复苏的步骤",
    ],
)
def test_risk_words_without_the_sign_raise_nothing(text: str) -> None:
    assert not (_codes(text) - {"chest_pain"}), red_flags.detect(text)


def test_a_negation_stops_at_the_clause_so_a_later_sign_counts() -> None:
    assert "haematemesis_melena" in _codes("无腹痛，但今天呕血两次")
    assert "chest_pain_acs" in _codes("无明显诱因出现胸痛伴大汗")  # 无明显诱因 is a pseudo-negation
    assert "unresponsive" in _codes("自杀未遂后昏迷")  # 未遂 is no negation


def test_flags_are_most_urgent_first_and_the_crisis_line_leads_the_advice() -> None:
    flags = red_flags.detect("服用大量安眠药自杀未遂，意识不清")
    assert [f.level for f in flags] == sorted(f.level for f in flags) and flags[0].code == "unresponsive"
    advice = red_flags.advice_text(flags)
    assert advice.startswith("你并不孤单") and "12356" in advice and "120" in advice
    assert advice.count("12356") == 1  # each advice once
    assert "意识丧失或意识改变（濒危）" in red_flags.summary(flags)


def test_every_flag_cites_its_source_and_the_lexicon_is_a_draft() -> None:
    lexicon = red_flags.lexicon()
    assert lexicon.meta.review_status == "draft — pending clinician review"
    assert "中华急诊医学杂志" in lexicon.meta.primary_source and "27(6)" in lexicon.meta.primary_source
    assert all(f.source and f.level in (1, 2, 3, 4) for f in lexicon.flag)
    hotlines = " ".join(a.zh for a in lexicon.advice.values())
    assert "120" in hotlines and "12356" in hotlines


def _raw() -> dict[str, Any]:
    return copy.deepcopy(packaged.toml("medfusion.specialists", "red_flags.toml"))


def test_unknown_keys_bad_levels_and_unknown_advice_are_load_errors() -> None:
    raw = _raw()
    raw["flag"][0]["severity"] = "high"
    with pytest.raises(ValidationError):
        red_flags.load(raw)
    raw = _raw()
    raw["flag"][0]["level"] = 5
    with pytest.raises(ValidationError):
        red_flags.load(raw)
    raw = _raw()
    raw["flag"][0]["advice"] = "pray"
    with pytest.raises(ValueError, match="unknown advice"):
        red_flags.load(raw)
    raw = _raw()
    raw["flag"].append(raw["flag"][0])
    with pytest.raises(ValueError, match="unique"):
        red_flags.load(raw)


def test_a_triage_extension_adds_a_level_3_flag_without_editing_the_engine() -> None:
    raw = _raw()
    raw["flag"].append(
        {
            "code": "renal_colic",
            "label": "肾绞痛",
            "level": 3,
            "advice": "emergency_department",
            "source": "急诊预检分诊专家共识 2018 §3 3级（急症）",
            "any": ["肾绞痛"],
        }
    )
    assert red_flags.load(raw).flag[-1].level == 3


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_detection_never_crashes(text: str) -> None:
    for flag in red_flags.detect(text):
        assert flag.words and flag.advice_zh
