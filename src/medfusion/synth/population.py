"""Deterministic synthetic Chinese residents: demographics, chronic conditions with coherent labs and
vitals, medications, encounters and notes, one :class:`PatientChart` each.

``generate_resident(seed, index)`` depends only on its arguments (its own ``random.Random`` seeded with
both, clinical time anchored at :data:`REFERENCE_DATE`), so any slice of a population can be generated
anywhere — in any order, on any worker — and the whole is byte-identical for the same seed and size.
Age/sex structure follows Shanghai's 7th national census (2020): 60+ are 23.4%, 0–14 are 9.8%, sex
ratio 107.3 men per 100 women.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from medfusion.record.clinical_time import age_on
from medfusion.record.districts import District
from medfusion.record.id_card import make_id_number
from medfusion.record.models import PatientChart
from medfusion.synth import conditions as cat
from medfusion.synth import labs as lab
from medfusion.synth.geography import pick_birth_region, pick_district, pick_street_address
from medfusion.synth.names import pick_name
from medfusion.synth.pii import PatientIdentifiers, PiiPlanter
from medfusion.synth.visits import REFERENCE_DATE, Resident, admission, at, outpatient, visit_day

AGE_BANDS: tuple[tuple[int, int, float], ...] = (
    (0, 14, 0.098),
    (15, 29, 0.140),
    (30, 44, 0.250),
    (45, 59, 0.278),
    (60, 69, 0.125),
    (70, 79, 0.075),
    (80, 99, 0.034),
)
MALE_SHARE = 107.3 / 207.3
_MOBILE_PREFIXES = (
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "158",
    "159",
    "177",
    "180",
    "181",
    "186",
    "187",
    "188",
    "189",
    "199",
)


def _pick_age(rng: random.Random) -> int:
    low, high, _ = rng.choices(AGE_BANDS, weights=[w for *_, w in AGE_BANDS])[0]
    return rng.randint(low, high)


def _chronic(rng: random.Random, age: int, sex: str) -> list[cat.ChronicCondition]:
    found: list[cat.ChronicCondition] = []
    for condition in cat.CONDITIONS:
        p = condition.probability(age, sex)
        keys = {c.key for c in found}
        # CKD and CHD cluster with hypertension and diabetes (shared risk factors).
        if condition.key in ("ckd", "chd", "stroke") and keys & {"htn", "t2dm"}:
            p *= 1.8
        if age >= 18 and rng.random() < p:
            found.append(condition)
    return found


def _baseline(r: Resident) -> None:
    rng = r.rng
    for key, test in lab.LABS.items():
        low, high = test.normal
        if r.sex == "female" and key in lab.FEMALE_RANGES:
            f_low, f_high = lab.FEMALE_RANGES[key]
            low, high = f_low + 2, f_high - 3
        r.baseline[key] = rng.uniform(low, high)
    for condition in r.chronic:
        for key, (low, high) in condition.labs.items():
            r.baseline[key] = rng.uniform(low, high)
    egfr_target = r.baseline.get("EGFR") if any(c.key == "ckd" for c in r.chronic) else None
    if egfr_target is not None:
        r.baseline["CREA"] = lab.creatinine_for_egfr(egfr_target, r.age, r.sex)
    height = rng.gauss(171 if r.sex == "male" else 159, 6)
    bmi = rng.uniform(19, 24) + (rng.uniform(1, 5) if any(c.key in ("htn", "t2dm") for c in r.chronic) else 0)
    r.baseline["HEIGHT"] = height
    r.baseline["WEIGHT"] = bmi * (height / 100) ** 2
    has = {c.key for c in r.chronic}
    r.baseline["SBP"] = rng.uniform(134, 166) if "htn" in has else rng.uniform(106, 134)
    r.baseline["DBP"] = rng.uniform(82, 98) if "htn" in has else rng.uniform(64, 84)
    r.baseline["SPO2"] = rng.uniform(91, 95) if "copd" in has else rng.uniform(96, 99)


_ACUTE_DRUGS = {
    "J06.900": (cat.Drug("对乙酰氨基酚片", "N02BE01", 500, "mg", "口服", "PRN"), 3),
    "J20.900": (cat.Drug("盐酸氨溴索片", "R05CB06", 30, "mg", "口服", "TID"), 7),
    "K52.901": (cat.Drug("蒙脱石散", "A07BC05", 3, "g", "口服", "TID"), 3),
    "R51.x00": (cat.Drug("布洛芬缓释胶囊", "M01AE01", 300, "mg", "口服", "BID"), 3),
}
_LAB_PANELS = {
    "htn": ["K", "CREA", "EGFR"],
    "t2dm": ["GLU", "HBA1C"],
    "lipid": ["TC", "TG", "LDL", "HDL", "ALT"],
    "ckd": ["CREA", "EGFR", "K", "HGB"],
    "copd": ["WBC", "HGB"],
    "chd": ["TC", "LDL"],
    "stroke": ["TC", "LDL"],
}
_COMPLAINTS = {
    "htn": ("发现血压升高{y}年，要求复诊配药", "头晕{d}天"),
    "t2dm": ("血糖升高{y}年，定期复诊", "口干多饮{d}周"),
    "lipid": ("血脂异常复查",),
    "ckd": ("发现肌酐升高{y}年，复查肾功能", "双下肢轻度浮肿{d}天"),
    "copd": ("反复咳嗽咳痰{y}年，复诊", "活动后气促加重{d}天"),
    "chd": ("反复胸闷{y}年，复诊配药",),
    "stroke": ("脑梗死后{y}年，复诊配药",),
}


def generate_resident(seed: int, index: int, id_prefix: str = "P") -> PatientChart:
    return _build(seed, index, id_prefix, plant_pii=False)[0]


def generate_record(seed: int, index: int, id_prefix: str = "P", plant_pii: bool = False) -> dict[str, Any]:
    """The resident as one JSON object; with ``plant_pii`` each note also carries its gold ``pii_spans``."""
    chart, spans = _build(seed, index, id_prefix, plant_pii)
    record = chart.model_dump(mode="json")
    if plant_pii:
        for note in record["notes"]:
            note["pii_spans"] = spans.get(note["id"], [])
    return record


def _identifiers(seed: int, index: int, patient: dict[str, Any]) -> PatientIdentifiers:
    rng = random.Random(f"medfusion-ids:{seed}:{index}")
    address = patient["address"]
    return PatientIdentifiers(
        name=patient["name"],
        sex=patient["sex"],
        id_number=patient["id_number"],
        phone=patient["phone"],
        address=f"{address['city']}{address['district']}{address['line']}",
        inpatient_no=f"{rng.randrange(10**7, 10**8)}",
        outpatient_no=f"{rng.randrange(10**9, 10**10)}",
        record_no=f"{rng.randrange(10**6, 10**7)}",
        insurance_no=f"{rng.randrange(10**9, 10**10)}",
    )


@dataclass(frozen=True)
class _Identity:
    age: int
    sex: str
    birth: date
    name: str
    district: District
    region: str
    sequence: int


def _identity(rng: random.Random) -> _Identity:
    """The first draws of a resident: everything its ID number is made of."""
    age = _pick_age(rng)
    sex = "male" if rng.random() < MALE_SHARE else "female"
    birth = REFERENCE_DATE - timedelta(days=age * 365 + rng.randint(1, 364) + age // 4)
    name = pick_name(rng, sex, birth.year)
    district = pick_district(rng)
    region = pick_birth_region(rng, district, born_in_shanghai=rng.random() < 0.6, birth_year=birth.year)
    sequence = rng.randrange(0, 500) * 2 + (1 if sex == "male" else 0)
    return _Identity(age_on(birth, REFERENCE_DATE), sex, birth, name, district, region, sequence)


class _SequenceBook:
    """ID numbers must be unique in a population, but two residents can draw the same address code, birth
    date and sequence code (about 1 in 10,000 at 100k residents). The later resident (higher index) takes the
    next free sequence code of the same sex. That depends only on lower indices, so any slice of a
    population still equals the same slice of the whole; each process keeps its book per seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.used: set[tuple[str, date, int]] = set()
        self.final: list[int] = []

    def upto(self, index: int) -> int:
        while len(self.final) <= index:
            i = len(self.final)
            who = _identity(random.Random(f"medfusion-synth:{self.seed}:{i}"))
            sequence = who.sequence
            while (who.region, who.birth, sequence) in self.used:
                sequence = (sequence + 2) % 1000
            self.used.add((who.region, who.birth, sequence))
            self.final.append(sequence)
        return self.final[index]


_books: dict[int, _SequenceBook] = {}


def unique_sequence(seed: int, index: int) -> int:
    book = _books.get(seed)
    if book is None:
        book = _books[seed] = _SequenceBook(seed)
    return book.upto(index)


def _build(
    seed: int, index: int, id_prefix: str, plant_pii: bool
) -> tuple[PatientChart, dict[str, list[Any]]]:
    rng = random.Random(f"medfusion-synth:{seed}:{index}")
    who = _identity(rng)
    age, sex, birth, name, district, region = who.age, who.sex, who.birth, who.name, who.district, who.region
    sequence = unique_sequence(seed, index)
    pid = f"{id_prefix}{index + 1:07d}"
    if rng.random() < 0.85:
        phone = rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
    else:
        phone = f"021-{rng.randint(2, 6)}{rng.randrange(10**7):07d}"
    r = Resident(rng=rng, pid=pid, sex=sex, birth=birth, age=age, name=name, chronic=_chronic(rng, age, sex))
    patient = {
        "id": pid,
        "name": name,
        "sex": sex,
        "birth_date": birth.isoformat(),
        "id_number": make_id_number(region, birth, sequence),
        "phone": phone,
        "address": {
            "province": "上海市",
            "city": "上海市",
            "district": district.name,
            "line": pick_street_address(rng, district),
            "postal_code": district.postal_code,
        },
    }
    if plant_pii:
        r.planter = PiiPlanter(seed, index, _identifiers(seed, index, patient))
    _baseline(r)
    for condition in r.chronic:
        low, high = condition.onset_years
        years = rng.randint(low, max(low, min(high, age - 18)))
        r.onset[condition.key] = REFERENCE_DATE - timedelta(days=years * 365 + rng.randint(0, 300))
    if rng.random() < 0.10:
        substance, category, reaction = rng.choice(cat.ALLERGENS)
        r.add(
            "allergies",
            {
                "id": r.next_id("A"),
                "substance": substance,
                "category": category,
                "reaction": reaction,
                "severity": rng.choice(("mild", "moderate")),
                "criticality": "low",
            },
        )
    earliest = max(birth + timedelta(days=30), REFERENCE_DATE - timedelta(days=730))
    visits: list[tuple[date, str]] = []
    for condition in r.chronic:
        for _ in range(rng.randint(1, 3)):
            visits.append((visit_day(rng, earliest), condition.key))
    if not r.chronic:
        visits.append((visit_day(rng, earliest), "checkup" if rng.random() < 0.4 and age >= 18 else "acute"))
    visits.sort()
    prescribed: set[str] = set()
    for day, reason in visits:
        if reason == "checkup":
            code, cname, dept = cat.CHECKUP
            outpatient(r, day, dept, "健康体检", [(code, cname)], list(lab.LABS), [], False, "resolved")
        elif reason == "acute":
            code, cname, dept, complaint = rng.choice(cat.ACUTE_COMPLAINTS)
            drug, days = _ACUTE_DRUGS[code]
            outpatient(
                r,
                day,
                dept,
                f"{complaint}{rng.randint(1, 5)}天",
                [(code, cname)],
                [],
                [(drug, days)],
                code == "J06.900",
                "resolved",
            )
        else:
            condition = cat.BY_KEY[reason]
            template = rng.choice(_COMPLAINTS[reason])
            complaint = template.format(y=max(1, day.year - r.onset[reason].year), d=rng.randint(2, 10))
            chosen = [rng.choice(condition.drugs)] if condition.key not in prescribed else []
            prescribed.add(condition.key)
            others = [(c.icd10, c.name) for c in r.chronic if c is not condition]
            outpatient(
                r,
                day,
                condition.department,
                complaint,
                [(condition.icd10, condition.name), *others],
                _LAB_PANELS[reason],
                [(d, None) for d in chosen],
                False,
                "active",
            )
    keys = {c.key for c in r.chronic}
    if "chd" in keys and rng.random() < 0.3:
        day = visit_day(rng, earliest)
        admission(
            r,
            day,
            "心血管内科",
            "胸闷胸痛加重3天",
            [("I25.103", "冠状动脉粥样硬化性心脏病")],
            [(cat.Drug("替格瑞洛片", "B01AC24", 90, "mg", "口服", "BID"), 365)],
            ("36.0601", "冠状动脉药物涂层支架置入术"),
            "入院后完善检查，行冠脉造影示前降支狭窄85%，于LAD置入药物涂层支架1枚，术后予双联抗血小板治疗。",
            rng.randint(4, 8),
        )
    if "copd" in keys and rng.random() < 0.25:
        day = visit_day(rng, earliest)
        admission(
            r,
            day,
            "呼吸与危重症医学科",
            "咳嗽咳痰伴气促加重5天",
            [("J44.100", "慢性阻塞性肺病伴有急性加重")],
            [(cat.Drug("注射用甲泼尼龙琥珀酸钠", "H02AB04", 40, "mg", "静脉滴注", "QD"), 5)],
            None,
            "入院后予雾化吸入、糖皮质激素及氧疗，症状缓解。",
            rng.randint(6, 12),
        )
    if age >= 60 and rng.random() < 0.45:
        r.add(
            "immunizations",
            {
                "id": r.next_id("I"),
                "vaccine_name": "流感病毒裂解疫苗",
                "occurred_at": at(date(2024, 10, rng.randint(8, 31)), 10, 0).isoformat(),
                "dose_number": 1,
                "lot_number": f"FLU2024{rng.randint(1, 60):02d}",
            },
        )
    if age >= 60 and rng.random() < 0.15:
        r.add(
            "immunizations",
            {
                "id": r.next_id("I"),
                "vaccine_name": "23价肺炎球菌多糖疫苗",
                "occurred_at": at(date(2023, rng.randint(3, 11), 15), 9, 30).isoformat(),
                "dose_number": 1,
            },
        )
    return PatientChart.model_validate({"patient": patient, **r.chart}), r.spans


def generate_population(size: int, seed: int, start: int = 0, id_prefix: str = "P") -> Iterator[PatientChart]:
    for index in range(start, start + size):
        yield generate_resident(seed, index, id_prefix)
