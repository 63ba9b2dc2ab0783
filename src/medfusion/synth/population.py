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
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from medfusion.record.clinical_time import SHANGHAI, age_on
from medfusion.record.id_card import make_id_number
from medfusion.record.models import PatientChart
from medfusion.synth import conditions as cat
from medfusion.synth import labs as lab
from medfusion.synth import notes
from medfusion.synth.geography import pick_birth_region, pick_district, pick_street_address
from medfusion.synth.names import pick_name

REFERENCE_DATE = date(2025, 6, 30)
AGE_BANDS: tuple[tuple[int, int, float], ...] = (
    (0, 14, 0.098), (15, 29, 0.140), (30, 44, 0.250), (45, 59, 0.278),
    (60, 69, 0.125), (70, 79, 0.075), (80, 99, 0.034),
)
MALE_SHARE = 107.3 / 207.3
_MOBILE_PREFIXES = ("133", "135", "136", "137", "138", "139", "150", "151", "152", "158", "159", "177", "180",
                    "181", "186", "187", "188", "189", "199")


@dataclass
class _Resident:
    rng: random.Random
    pid: str
    sex: str
    birth: date
    age: int
    name: str
    chronic: list[cat.ChronicCondition]
    baseline: dict[str, float] = field(default_factory=dict)
    chart: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    onset: dict[str, date] = field(default_factory=dict)  # condition key → date of diagnosis
    long_term: list[str] = field(default_factory=list)  # long-term medicines prescribed so far

    def history(self, on: date) -> list[tuple[str, int]]:
        return [(c.name, max(1, on.year - self.onset[c.key].year)) for c in self.chronic]

    def next_id(self, prefix: str) -> str:
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        return f"{self.pid}-{prefix}{self.counters[prefix]}"

    def add(self, kind: str, item: dict[str, object]) -> None:
        self.chart.setdefault(kind, []).append(item)


def _at(day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


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


def _baseline(r: _Resident) -> None:
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


def _lab_value(r: _Resident, key: str) -> float:
    test = lab.LABS.get(key) or lab.VITALS[key]
    value = r.baseline[key] * r.rng.uniform(0.95, 1.05)
    return lab.round_to(value, test.decimals)


def _observe(r: _Resident, encounter_id: str, when: datetime, keys: list[str]) -> list[tuple[str, float, str, bool]]:
    """Record lab results (eGFR always computed from the creatinine drawn with it)."""
    shown: list[tuple[str, float, str, bool]] = []
    values: dict[str, float] = {}
    for key in keys:
        test = lab.LABS[key]
        if key == "EGFR":
            value = lab.round_to(lab.ckd_epi_2009(values["CREA"], r.age, r.sex), 0)
        else:
            value = _lab_value(r, key)
        values[key] = value
        low, high = lab.reference_range(key, r.sex, r.age)
        r.add("observations", {
            "id": r.next_id("O"), "encounter_id": encounter_id, "category": "laboratory", "loinc_code": test.loinc,
            "name": test.name, "value": value, "unit": test.unit, "reference_low": low, "reference_high": high,
            "effective_at": when.isoformat(),
        })
        abnormal = (low is not None and value < low) or (high is not None and value > high)
        shown.append((test.name, value, test.unit, abnormal))
    return shown


def _vitals(r: _Resident, encounter_id: str, when: datetime, fever: bool, full: bool) -> dict[str, float]:
    rng = r.rng
    v: dict[str, float] = {
        "SBP": lab.round_to(r.baseline["SBP"] + rng.uniform(-6, 6), 0),
        "DBP": lab.round_to(r.baseline["DBP"] + rng.uniform(-4, 4), 0),
        "HR": float(rng.randint(62, 96)),
        "TEMP": lab.round_to(rng.uniform(37.5, 38.8) if fever else rng.uniform(36.2, 36.9), 1),
    }
    if full:
        v["RR"] = float(rng.randint(14, 20))
        v["SPO2"] = lab.round_to(r.baseline["SPO2"], 0)
        v["HEIGHT"] = lab.round_to(r.baseline["HEIGHT"], 0)
        v["WEIGHT"] = lab.round_to(r.baseline["WEIGHT"], 1)
        v["BMI"] = lab.round_to(v["WEIGHT"] / (v["HEIGHT"] / 100) ** 2, 1)
    for key, value in v.items():
        test = lab.VITALS[key]
        r.add("observations", {
            "id": r.next_id("V"), "encounter_id": encounter_id, "category": "vital-signs",
            "loinc_code": test.loinc, "name": test.name, "value": value, "unit": test.unit,
            "reference_low": test.low, "reference_high": test.high, "effective_at": when.isoformat(),
        })
    return v


def _drug_text(d: cat.Drug) -> str:
    return f"{d.name} {d.dose:g}{d.unit} {d.route} {d.frequency.lower()}"


def _prescribe(r: _Resident, encounter_id: str, drug: cat.Drug, start: datetime, days: int | None) -> None:
    if days is None:
        r.long_term.append(_drug_text(drug))
    stop = (start + timedelta(days=days)).isoformat() if days else None
    r.add("medications", {
        "id": r.next_id("M"), "encounter_id": encounter_id, "drug_name": drug.name, "atc_code": drug.atc,
        "dose": drug.dose, "dose_unit": drug.unit, "route": drug.route, "frequency": drug.frequency,
        "status": "completed" if days else "active", "start": start.isoformat(), "stop": stop,
    })


_DOCTORS: dict[str, tuple[str, ...]] = {}


def _doctor(r: _Resident, department: str) -> str:
    # A fixed small roster per department keeps author names realistic and stable across runs.
    roster = _DOCTORS.setdefault(
        department,
        tuple(pick_name(random.Random(f"doctor:{department}:{i}"), "male" if i % 2 else "female", 1975)
              for i in range(4)),
    )
    return r.rng.choice(roster)


def _diagnose(r: _Resident, eid: str, diagnoses: list[tuple[str, str]], status: str, when: datetime) -> None:
    onsets = {c.icd10: r.onset[c.key] for c in r.chronic}
    for index, (code, name) in enumerate(diagnoses):
        onset = onsets.get(code, when.date())
        r.add("conditions", {
            "id": r.next_id("C"), "encounter_id": eid, "icd10_code": code, "name": name,
            "role": "primary" if index == 0 else "secondary", "clinical_status": status,
            "onset_date": max(onset, r.birth).isoformat(), "recorded_at": when.isoformat(),
        })


def _visit_day(rng: random.Random, earliest: date) -> date:
    span = (REFERENCE_DATE - earliest).days
    return earliest + timedelta(days=rng.randint(0, max(span, 0)))


def _outpatient(r: _Resident, day: date, department: str, complaint: str, diagnoses: list[tuple[str, str]],
                lab_keys: list[str], drugs: list[tuple[cat.Drug, int | None]], fever: bool, status: str) -> None:
    rng = r.rng
    eid = r.next_id("E")
    when = _at(day, rng.randint(8, 16), rng.choice((0, 10, 20, 30, 40, 50)))
    r.add("encounters", {
        "id": eid, "encounter_class": "outpatient", "department": department,
        "admitted_at": when.isoformat(), "discharged_at": (when + timedelta(minutes=rng.randint(10, 40))).isoformat(),
    })
    _diagnose(r, eid, diagnoses, status, when)
    vitals = _vitals(r, eid, when, fever, full=not r.chart.get("encounters", [])[:-1])
    shown = _observe(r, eid, when + timedelta(minutes=5), lab_keys) if lab_keys else []
    for drug, days in drugs:
        _prescribe(r, eid, drug, when, days)
    facts = notes.VisitFacts(
        name=r.name, sex=r.sex, age=age_on(r.birth, day), when=when, complaint=complaint,
        diagnoses=[n for _, n in diagnoses],
        chronic=r.history(day), vitals=vitals, labs=shown,
        drugs=[*r.long_term, *(_drug_text(d) for d, days in drugs if days)],
        allergies=[a["substance"] for a in r.chart.get("allergies", [])],  # type: ignore[misc]
        department=department,
    )
    r.add("notes", {
        "id": r.next_id("N"), "encounter_id": eid, "note_type": "门诊病历", "author": _doctor(r, department),
        "written_at": (when + timedelta(minutes=8)).isoformat(),
        "sections": [{"title": t, "text": x} for t, x in notes.outpatient_sections(rng, facts)],
    })


def _admission(r: _Resident, day: date, department: str, complaint: str, diagnoses: list[tuple[str, str]],
               drugs: list[tuple[cat.Drug, int | None]], procedure: tuple[str, str] | None, course: str,
               stay: int) -> None:
    rng = r.rng
    eid = r.next_id("E")
    admitted = _at(day, rng.randint(8, 20), rng.choice((5, 15, 25, 35, 45, 55)))
    discharged = _at(day + timedelta(days=stay), rng.randint(9, 11), 0)
    r.add("encounters", {
        "id": eid, "encounter_class": "inpatient", "department": department,
        "ward": f"{rng.randint(1, 20)}病区", "bed": f"{rng.randint(1, 48)}床",
        "admitted_at": admitted.isoformat(), "discharged_at": discharged.isoformat(),
    })
    _diagnose(r, eid, diagnoses, "active", admitted)
    vitals = _vitals(r, eid, admitted + timedelta(minutes=20), False, full=True)
    shown = _observe(r, eid, admitted + timedelta(hours=12), ["GLU", "HBA1C", "TC", "TG", "LDL", "HDL", "ALT",
                                                           "HGB", "WBC", "PLT", "K", "CREA", "EGFR"])
    if procedure:
        r.add("procedures", {
            "id": r.next_id("P"), "encounter_id": eid, "icd9cm3_code": procedure[0], "name": procedure[1],
            "performed_at": _at(day + timedelta(days=1), 14, 0).isoformat(),
        })
    for drug, days in drugs:
        _prescribe(r, eid, drug, admitted + timedelta(hours=2), days)
    facts = notes.VisitFacts(
        name=r.name, sex=r.sex, age=age_on(r.birth, day), when=admitted, complaint=complaint,
        diagnoses=[n for _, n in diagnoses],
        chronic=r.history(day), vitals=vitals, labs=shown, drugs=[_drug_text(d) for d, _ in drugs],
        allergies=[a["substance"] for a in r.chart.get("allergies", [])],  # type: ignore[misc]
        department=department, extra={"course": course},
    )
    author = _doctor(r, department)
    r.add("notes", {
        "id": r.next_id("N"), "encounter_id": eid, "note_type": "入院记录", "author": author,
        "written_at": (admitted + timedelta(hours=6)).isoformat(),
        "sections": [{"title": t, "text": x} for t, x in notes.admission_sections(rng, facts)],
    })
    r.add("notes", {
        "id": r.next_id("N"), "encounter_id": eid, "note_type": "出院记录", "author": author,
        "written_at": discharged.isoformat(),
        "sections": [{"title": t, "text": x} for t, x in notes.discharge_sections(rng, facts, admitted)],
    })


_ACUTE_DRUGS = {
    "J06.900": (cat.Drug("对乙酰氨基酚片", "N02BE01", 500, "mg", "口服", "PRN"), 3),
    "J20.900": (cat.Drug("盐酸氨溴索片", "R05CB06", 30, "mg", "口服", "TID"), 7),
    "K52.901": (cat.Drug("蒙脱石散", "A07BC05", 3, "g", "口服", "TID"), 3),
    "R51.x00": (cat.Drug("布洛芬缓释胶囊", "M01AE01", 300, "mg", "口服", "BID"), 3),
}
_LAB_PANELS = {
    "htn": ["K", "CREA", "EGFR"], "t2dm": ["GLU", "HBA1C"], "lipid": ["TC", "TG", "LDL", "HDL", "ALT"],
    "ckd": ["CREA", "EGFR", "K", "HGB"], "copd": ["WBC", "HGB"], "chd": ["TC", "LDL"], "stroke": ["TC", "LDL"],
}
_COMPLAINTS = {
    "htn": ("发现血压升高{y}年，要求复诊配药", "头晕{d}天"), "t2dm": ("血糖升高{y}年，定期复诊", "口干多饮{d}周"),
    "lipid": ("血脂异常复查",), "ckd": ("发现肌酐升高{y}年，复查肾功能", "双下肢轻度浮肿{d}天"),
    "copd": ("反复咳嗽咳痰{y}年，复诊", "活动后气促加重{d}天"), "chd": ("反复胸闷{y}年，复诊配药",),
    "stroke": ("脑梗死后{y}年，复诊配药",),
}


def generate_resident(seed: int, index: int, id_prefix: str = "P") -> PatientChart:
    rng = random.Random(f"medfusion-synth:{seed}:{index}")
    age = _pick_age(rng)
    sex = "male" if rng.random() < MALE_SHARE else "female"
    birth = REFERENCE_DATE - timedelta(days=age * 365 + rng.randint(1, 364) + age // 4)
    age = age_on(birth, REFERENCE_DATE)
    name = pick_name(rng, sex, birth.year)
    district = pick_district(rng)
    region = pick_birth_region(rng, district, born_in_shanghai=rng.random() < 0.6)
    sequence = rng.randrange(0, 500) * 2 + (1 if sex == "male" else 0)
    pid = f"{id_prefix}{index + 1:07d}"
    if rng.random() < 0.85:
        phone = rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
    else:
        phone = f"021-{rng.randint(2, 6)}{rng.randrange(10**7):07d}"
    r = _Resident(rng=rng, pid=pid, sex=sex, birth=birth, age=age, name=name, chronic=_chronic(rng, age, sex))
    patient = {
        "id": pid, "name": name, "sex": sex, "birth_date": birth.isoformat(),
        "id_number": make_id_number(region, birth, sequence), "phone": phone,
        "address": {"province": "上海市", "city": "上海市", "district": district.name,
                    "line": pick_street_address(rng, district), "postal_code": district.postal_code},
    }
    _baseline(r)
    for condition in r.chronic:
        low, high = condition.onset_years
        years = rng.randint(low, max(low, min(high, age - 18)))
        r.onset[condition.key] = REFERENCE_DATE - timedelta(days=years * 365 + rng.randint(0, 300))
    if rng.random() < 0.10:
        substance, category, reaction = rng.choice(cat.ALLERGENS)
        r.add("allergies", {"id": r.next_id("A"), "substance": substance, "category": category,
                            "reaction": reaction, "severity": rng.choice(("mild", "moderate")),
                            "criticality": "low"})
    earliest = max(birth + timedelta(days=30), REFERENCE_DATE - timedelta(days=730))
    visits: list[tuple[date, str]] = []
    for condition in r.chronic:
        for _ in range(rng.randint(1, 3)):
            visits.append((_visit_day(rng, earliest), condition.key))
    if not r.chronic:
        visits.append((_visit_day(rng, earliest), "checkup" if rng.random() < 0.4 and age >= 18 else "acute"))
    visits.sort()
    prescribed: set[str] = set()
    for day, reason in visits:
        if reason == "checkup":
            code, cname, dept = cat.CHECKUP
            _outpatient(r, day, dept, "健康体检", [(code, cname)], list(lab.LABS), [], False, "resolved")
        elif reason == "acute":
            code, cname, dept, complaint = rng.choice(cat.ACUTE_COMPLAINTS)
            drug, days = _ACUTE_DRUGS[code]
            _outpatient(r, day, dept, f"{complaint}{rng.randint(1, 5)}天", [(code, cname)], [],
                        [(drug, days)], code == "J06.900", "resolved")
        else:
            condition = cat.BY_KEY[reason]
            template = rng.choice(_COMPLAINTS[reason])
            complaint = template.format(y=max(1, day.year - r.onset[reason].year), d=rng.randint(2, 10))
            chosen = [rng.choice(condition.drugs)] if condition.key not in prescribed else []
            prescribed.add(condition.key)
            others = [(c.icd10, c.name) for c in r.chronic if c is not condition]
            _outpatient(r, day, condition.department, complaint, [(condition.icd10, condition.name), *others],
                        _LAB_PANELS[reason], [(d, None) for d in chosen], False, "active")
    keys = {c.key for c in r.chronic}
    if "chd" in keys and rng.random() < 0.3:
        day = _visit_day(rng, earliest)
        _admission(r, day, "心血管内科", "胸闷胸痛加重3天", [("I25.103", "冠状动脉粥样硬化性心脏病")],
                   [(cat.Drug("替格瑞洛片", "B01AC24", 90, "mg", "口服", "BID"), 365)],
                   ("36.0601", "冠状动脉药物涂层支架置入术"),
                   "入院后完善检查，行冠脉造影示前降支狭窄85%，于LAD置入药物涂层支架1枚，术后予双联抗血小板治疗。",
                   rng.randint(4, 8))
    if "copd" in keys and rng.random() < 0.25:
        day = _visit_day(rng, earliest)
        _admission(r, day, "呼吸与危重症医学科", "咳嗽咳痰伴气促加重5天",
                   [("J44.100", "慢性阻塞性肺病伴有急性加重")],
                   [(cat.Drug("注射用甲泼尼龙琥珀酸钠", "H02AB04", 40, "mg", "静脉滴注", "QD"), 5)], None,
                   "入院后予雾化吸入、糖皮质激素及氧疗，症状缓解。", rng.randint(6, 12))
    if age >= 60 and rng.random() < 0.45:
        r.add("immunizations", {"id": r.next_id("I"), "vaccine_name": "流感病毒裂解疫苗",
                                "occurred_at": _at(date(2024, 10, rng.randint(8, 31)), 10, 0).isoformat(),
                                "dose_number": 1, "lot_number": f"FLU2024{rng.randint(1, 60):02d}"})
    if age >= 60 and rng.random() < 0.15:
        r.add("immunizations", {"id": r.next_id("I"), "vaccine_name": "23价肺炎球菌多糖疫苗",
                                "occurred_at": _at(date(2023, rng.randint(3, 11), 15), 9, 30).isoformat(),
                                "dose_number": 1})
    return PatientChart.model_validate({"patient": patient, **r.chart})


def generate_population(size: int, seed: int, start: int = 0, id_prefix: str = "P") -> Iterator[PatientChart]:
    for index in range(start, start + size):
        yield generate_resident(seed, index, id_prefix)
