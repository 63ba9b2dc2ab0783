"""Clinical note text from varied templates: several phrasings per section, negations, and dates and
numbers written the ways Chinese clinicians write them — so NLP downstream meets more than one shape.

Every number in a note is the number stored in the structured record for that visit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime

from medfusion.synth.pii import mark

_NEGATIVES = (
    ("无胸闷胸痛，无发热。", "胸热"),
    ("否认胸痛、心悸。", "胸悸"),
    ("无恶心呕吐，无腹痛腹泻。", "吐泻腹"),
    ("未诉头晕头痛。", "头晕"),
)
_HISTORY_CONDITIONS = ("高血压", "糖尿病", "冠心病", "脑梗死", "慢性肾脏病", "慢性阻塞性肺疾病")


@dataclass
class VisitFacts:
    name: str
    sex: str  # "male" | "female"
    age: int
    when: datetime
    complaint: str
    diagnoses: list[str]
    chronic: list[tuple[str, int]]  # (condition name, years since diagnosis)
    vitals: dict[str, float]
    labs: list[tuple[str, float, str, bool]]  # (name, value, unit, abnormal)
    drugs: list[str]  # "苯磺酸氨氯地平片 5mg 口服 QD"
    allergies: list[str]
    department: str
    extra: dict[str, str] = field(default_factory=dict)


def fmt_date(rng: random.Random, value: date) -> str:
    """A date as Chinese clinicians write it, marked as an identifier (see :mod:`medfusion.synth.pii`)."""
    style = rng.randrange(5)
    if style == 0:
        text = value.isoformat()
    elif style == 1:
        text = f"{value.year}年{value.month}月{value.day}日"
    elif style == 2:
        text = f"{value.year}/{value.month}/{value.day}"
    elif style == 3:
        text = f"{value.year}.{value.month:02d}.{value.day:02d}"
    else:
        text = f"{value.month}月{value.day}日"
    return mark("DATE", text)


def _num(value: float) -> str:
    return f"{value:g}"


def _sex(facts: VisitFacts) -> str:
    return "男" if facts.sex == "male" else "女"


def _intro(rng: random.Random, f: VisitFacts) -> str:
    name = mark("PERSON", f.name)
    age = mark("AGE", f"{f.age}岁") if f.age > 89 else f"{f.age}岁"
    return rng.choice(
        [
            f"患者{name}，{_sex(f)}，{age}，",
            f"患者{_sex(f)}性，{age}，",
            f"{name}，{_sex(f)}，{age}。患者",
            "患者",
        ]
    )


def chief_complaint(rng: random.Random, f: VisitFacts) -> str:
    return f.complaint


def present_illness(rng: random.Random, f: VisitFacts) -> str:
    parts = [_intro(rng, f)]
    for condition, years in f.chronic:
        parts.append(
            rng.choice(
                [
                    f"{condition}病史{years}年，",
                    f"有{condition}史{years}余年，",
                    f"{f.when.year - years}年诊断为{condition}，",
                    f"确诊{condition}{years}年，",
                ]
            )
        )
    if f.drugs:
        parts.append(
            rng.choice(["目前规律服用", "平素服用", "长期使用", "现用药："]) + "、".join(f.drugs) + "，"
        )
        parts.append(rng.choice(["病情控制尚可。", "自述控制一般。", "近期未规律监测。", "无明显不适。"]))
    parts.append(f"此次因“{f.complaint}”于{fmt_date(rng, f.when.date())}来诊。")
    # pertinent negatives, never contradicting the complaint itself
    negatives = [text for text, topic in _NEGATIVES if not any(ch in f.complaint for ch in topic)]
    parts.append(rng.choice([*negatives, ""]))
    return "".join(parts)


def past_history(rng: random.Random, f: VisitFacts) -> str:
    had = {c for c, _ in f.chronic}
    denied = [c for c in _HISTORY_CONDITIONS if not any(c in h or h in c for h in had)]
    rng.shuffle(denied)
    denied = denied[: rng.randint(2, 4)]
    text = rng.choice(["否认", "无", "既往否认"]) + "、".join(denied) + "病史。"
    text += rng.choice(["否认手术外伤史。", "无手术史。", "否认输血史。"])
    return text


def allergy_history(rng: random.Random, f: VisitFacts) -> str:
    if f.allergies:
        return rng.choice(["对", "自述对"]) + "、".join(f.allergies) + "过敏。"
    return rng.choice(["否认药物、食物过敏史。", "无药物过敏史。", "否认过敏史。"])


def examination(rng: random.Random, f: VisitFacts) -> str:
    v = f.vitals
    bits = []
    if "TEMP" in v:
        bits.append(
            rng.choice([f"T {_num(v['TEMP'])}℃", f"体温{_num(v['TEMP'])}℃", f"T:{_num(v['TEMP'])}°C"])
        )
    if "HR" in v:
        bits.append(
            rng.choice([f"P {_num(v['HR'])}次/分", f"心率{_num(v['HR'])}次/分", f"HR:{_num(v['HR'])}bpm"])
        )
    if "RR" in v:
        bits.append(rng.choice([f"R {_num(v['RR'])}次/分", f"呼吸{_num(v['RR'])}次/分"]))
    if "SBP" in v:
        sbp, dbp = _num(v["SBP"]), _num(v["DBP"])
        bits.append(rng.choice([f"BP {sbp}/{dbp}mmHg", f"血压{sbp}/{dbp} mmHg", f"BP:{sbp}/{dbp}mmHg"]))
    if "SPO2" in v:
        bits.append(rng.choice([f"SpO2 {_num(v['SPO2'])}%", f"指脉氧{_num(v['SPO2'])}%"]))
    text = "，".join(bits) + "。" if bits else ""
    text += rng.choice(
        [
            "神志清，精神可，双肺呼吸音清，未闻及干湿啰音，心律齐，腹软，双下肢无水肿。",
            "神清，心肺听诊无殊，腹平软，无压痛，双下肢不肿。",
            "一般情况可，两肺呼吸音粗，心率齐，各瓣膜区未闻及病理性杂音。",
        ]
    )
    return text


def results(rng: random.Random, f: VisitFacts) -> str:
    if not f.labs:
        return rng.choice(["暂无。", "未查。", "本次未行辅助检查。"])
    items = []
    for name, value, unit, abnormal in f.labs:
        arrow = ("↑" if abnormal else "") if rng.random() < 0.5 else ""
        items.append(rng.choice([f"{name} {_num(value)}{unit}{arrow}", f"{name}：{_num(value)} {unit}"]))
    prefix = rng.choice(["", f"{fmt_date(rng, f.when.date())}查：", "化验示："])
    return prefix + "，".join(items) + "。"


def diagnosis(rng: random.Random, f: VisitFacts) -> str:
    if len(f.diagnoses) == 1:
        return f.diagnoses[0]
    return "\n".join(f"{i}. {d}" for i, d in enumerate(f.diagnoses, 1))


def plan(rng: random.Random, f: VisitFacts) -> str:
    text = ""
    if f.drugs:
        text += rng.choice(["继续目前治疗：", "予以：", "处方："]) + "；".join(f.drugs) + "。"
    text += rng.choice(
        [
            "低盐低脂饮食，适当运动。",
            "注意休息，多饮水。",
            "监测血压、血糖，门诊随访。",
            f"{rng.choice(['1', '2', '3'])}个月后复诊，不适随诊。",
        ]
    )
    return text


def _history_and_findings(rng: random.Random, f: VisitFacts) -> list[tuple[str | None, str]]:
    """The sections 门诊病历 and 入院记录 share (卫医政发〔2010〕11号《病历书写基本规范》 order)."""
    return [
        ("主诉", chief_complaint(rng, f)),
        ("现病史", present_illness(rng, f)),
        ("既往史", past_history(rng, f)),
        ("过敏史", allergy_history(rng, f)),
        ("体格检查", examination(rng, f)),
        ("辅助检查", results(rng, f)),
    ]


def outpatient_sections(rng: random.Random, f: VisitFacts) -> list[tuple[str | None, str]]:
    sections = _history_and_findings(rng, f)
    return [*sections, ("诊断", diagnosis(rng, f)), ("处理", plan(rng, f))]


def admission_sections(rng: random.Random, f: VisitFacts) -> list[tuple[str | None, str]]:
    return [*_history_and_findings(rng, f), ("初步诊断", diagnosis(rng, f))]


def discharge_sections(rng: random.Random, f: VisitFacts, admitted: datetime) -> list[tuple[str | None, str]]:
    course = f.extra.get("course", "予对症支持治疗，症状好转。")
    return [
        (
            "入院情况",
            f"患者因“{f.complaint}”于{fmt_date(rng, admitted.date())}入院。",
        ),
        ("诊疗经过", course),
        ("出院诊断", diagnosis(rng, f)),
        (
            "出院医嘱",
            ("；".join(f.drugs) + "。" if f.drugs else "")
            + rng.choice(["心内科门诊随访。", "1周后门诊复查。", "按时服药，门诊随诊。"]),
        ),
    ]
