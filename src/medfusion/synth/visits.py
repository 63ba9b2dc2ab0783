"""One visit of a synthetic resident: its encounter, diagnoses, vitals, labs, prescriptions and notes.

Outpatient visits write a 门诊病历; admissions write 入院记录 and 出院记录. Numbers in the notes are the
numbers recorded for that visit. Clinical time is anchored at :data:`REFERENCE_DATE` so output never
depends on the day it is generated.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from medfusion.record.clinical_time import SHANGHAI, age_on
from medfusion.synth import conditions as cat
from medfusion.synth import labs as lab
from medfusion.synth import notes
from medfusion.synth.names import pick_name
from medfusion.synth.pii import PiiPlanter, unmark_sections

REFERENCE_DATE = date(2025, 6, 30)


@dataclass
class Resident:
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
    planter: PiiPlanter | None = None
    spans: dict[str, list[dict[str, object]]] = field(default_factory=dict)  # note id → gold identifier spans

    def history(self, on: date) -> list[tuple[str, int]]:
        return [(c.name, max(1, on.year - self.onset[c.key].year)) for c in self.chronic]

    def next_id(self, prefix: str) -> str:
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        return f"{self.pid}-{prefix}{self.counters[prefix]}"

    def add(self, kind: str, item: dict[str, object]) -> None:
        self.chart.setdefault(kind, []).append(item)

    def add_note(
        self, note_type: str, eid: str, author: str, written: datetime, sections: list[tuple[str | None, str]]
    ) -> None:
        """Strip the identifier markers; keep their spans only when planting (``--plant-pii``)."""
        if self.planter is not None:
            sections = self.planter.plant(sections)
        clean, spans = unmark_sections(sections)
        note_id = self.next_id("N")
        if self.planter is not None:
            self.spans[note_id] = spans
        self.add(
            "notes",
            {
                "id": note_id,
                "encounter_id": eid,
                "note_type": note_type,
                "author": author,
                "written_at": written.isoformat(),
                "sections": [{"title": t, "text": x} for t, x in clean],
            },
        )


def at(day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def _lab_value(r: Resident, key: str) -> float:
    test = lab.LABS.get(key) or lab.VITALS[key]
    value = r.baseline[key] * r.rng.uniform(0.95, 1.05)
    return lab.round_to(value, test.decimals)


def _observe(
    r: Resident, encounter_id: str, when: datetime, keys: list[str]
) -> list[tuple[str, float, str, bool]]:
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
        r.add(
            "observations",
            {
                "id": r.next_id("O"),
                "encounter_id": encounter_id,
                "category": "laboratory",
                "loinc_code": test.loinc,
                "name": test.name,
                "value": value,
                "unit": test.unit,
                "reference_low": low,
                "reference_high": high,
                "effective_at": when.isoformat(),
            },
        )
        abnormal = (low is not None and value < low) or (high is not None and value > high)
        shown.append((test.name, value, test.unit, abnormal))
    return shown


def _vitals(r: Resident, encounter_id: str, when: datetime, fever: bool, full: bool) -> dict[str, float]:
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
        r.add(
            "observations",
            {
                "id": r.next_id("V"),
                "encounter_id": encounter_id,
                "category": "vital-signs",
                "loinc_code": test.loinc,
                "name": test.name,
                "value": value,
                "unit": test.unit,
                "reference_low": test.low,
                "reference_high": test.high,
                "effective_at": when.isoformat(),
            },
        )
    return v


def _drug_text(d: cat.Drug) -> str:
    return f"{d.name} {d.dose:g}{d.unit} {d.route} {d.frequency.lower()}"


def prescribe(r: Resident, encounter_id: str, drug: cat.Drug, start: datetime, days: int | None) -> None:
    if days is None:
        r.long_term.append(_drug_text(drug))
    stop = (start + timedelta(days=days)).isoformat() if days else None
    r.add(
        "medications",
        {
            "id": r.next_id("M"),
            "encounter_id": encounter_id,
            "drug_name": drug.name,
            "atc_code": drug.atc,
            "dose": drug.dose,
            "dose_unit": drug.unit,
            "route": drug.route,
            "frequency": drug.frequency,
            "status": "completed" if days else "active",
            "start": start.isoformat(),
            "stop": stop,
        },
    )


_DOCTORS: dict[str, tuple[str, ...]] = {}


def _doctor(r: Resident, department: str) -> str:
    # A fixed small roster per department keeps author names realistic and stable across runs.
    roster = _DOCTORS.setdefault(
        department,
        tuple(
            pick_name(random.Random(f"doctor:{department}:{i}"), "male" if i % 2 else "female", 1975)
            for i in range(4)
        ),
    )
    return r.rng.choice(roster)


def _diagnose(r: Resident, eid: str, diagnoses: list[tuple[str, str]], status: str, when: datetime) -> None:
    onsets = {c.icd10: r.onset[c.key] for c in r.chronic}
    for index, (code, name) in enumerate(diagnoses):
        onset = onsets.get(code, when.date())
        r.add(
            "conditions",
            {
                "id": r.next_id("C"),
                "encounter_id": eid,
                "icd10_code": code,
                "name": name,
                "role": "primary" if index == 0 else "secondary",
                "clinical_status": status,
                "onset_date": max(onset, r.birth).isoformat(),
                "recorded_at": when.isoformat(),
            },
        )


def _facts(
    r: Resident,
    day: date,
    when: datetime,
    complaint: str,
    diagnoses: list[tuple[str, str]],
    vitals: dict[str, float],
    shown: list[tuple[str, float, str, bool]],
    department: str,
    drugs: list[str],
    extra: dict[str, str] | None = None,
) -> notes.VisitFacts:
    """What the note of this visit may say — only facts recorded for it."""
    return notes.VisitFacts(
        name=r.name,
        sex=r.sex,
        age=age_on(r.birth, day),
        when=when,
        complaint=complaint,
        diagnoses=[n for _, n in diagnoses],
        chronic=r.history(day),
        vitals=vitals,
        labs=shown,
        drugs=drugs,
        allergies=[a["substance"] for a in r.chart.get("allergies", [])],  # type: ignore[misc]
        department=department,
        extra=extra or {},
    )


def visit_day(rng: random.Random, earliest: date) -> date:
    span = (REFERENCE_DATE - earliest).days
    return earliest + timedelta(days=rng.randint(0, max(span, 0)))


def outpatient(
    r: Resident,
    day: date,
    department: str,
    complaint: str,
    diagnoses: list[tuple[str, str]],
    lab_keys: list[str],
    drugs: list[tuple[cat.Drug, int | None]],
    fever: bool,
    status: str,
) -> None:
    rng = r.rng
    eid = r.next_id("E")
    when = at(day, rng.randint(8, 16), rng.choice((0, 10, 20, 30, 40, 50)))
    r.add(
        "encounters",
        {
            "id": eid,
            "encounter_class": "outpatient",
            "department": department,
            "admitted_at": when.isoformat(),
            "discharged_at": (when + timedelta(minutes=rng.randint(10, 40))).isoformat(),
        },
    )
    _diagnose(r, eid, diagnoses, status, when)
    vitals = _vitals(r, eid, when, fever, full=not r.chart.get("encounters", [])[:-1])
    shown = _observe(r, eid, when + timedelta(minutes=5), lab_keys) if lab_keys else []
    for drug, days in drugs:
        prescribe(r, eid, drug, when, days)
    facts = _facts(
        r,
        day,
        when,
        complaint,
        diagnoses,
        vitals,
        shown,
        department,
        [*r.long_term, *(_drug_text(d) for d, days in drugs if days)],
    )
    r.add_note(
        "门诊病历",
        eid,
        _doctor(r, department),
        when + timedelta(minutes=8),
        notes.outpatient_sections(rng, facts),
    )


def admission(
    r: Resident,
    day: date,
    department: str,
    complaint: str,
    diagnoses: list[tuple[str, str]],
    drugs: list[tuple[cat.Drug, int | None]],
    procedure: tuple[str, str] | None,
    course: str,
    stay: int,
) -> None:
    rng = r.rng
    eid = r.next_id("E")
    admitted = at(day, rng.randint(8, 20), rng.choice((5, 15, 25, 35, 45, 55)))
    discharged = at(day + timedelta(days=stay), rng.randint(9, 11), 0)
    r.add(
        "encounters",
        {
            "id": eid,
            "encounter_class": "inpatient",
            "department": department,
            "ward": f"{rng.randint(1, 20)}病区",
            "bed": f"{rng.randint(1, 48)}床",
            "admitted_at": admitted.isoformat(),
            "discharged_at": discharged.isoformat(),
        },
    )
    _diagnose(r, eid, diagnoses, "active", admitted)
    vitals = _vitals(r, eid, admitted + timedelta(minutes=20), False, full=True)
    shown = _observe(
        r,
        eid,
        admitted + timedelta(hours=12),
        ["GLU", "HBA1C", "TC", "TG", "LDL", "HDL", "ALT", "HGB", "WBC", "PLT", "K", "CREA", "EGFR"],
    )
    if procedure:
        r.add(
            "procedures",
            {
                "id": r.next_id("P"),
                "encounter_id": eid,
                "icd9cm3_code": procedure[0],
                "name": procedure[1],
                "performed_at": at(day + timedelta(days=1), 14, 0).isoformat(),
            },
        )
    for drug, days in drugs:
        prescribe(r, eid, drug, admitted + timedelta(hours=2), days)
    facts = _facts(
        r,
        day,
        admitted,
        complaint,
        diagnoses,
        vitals,
        shown,
        department,
        [_drug_text(d) for d, _ in drugs],
        extra={"course": course},
    )
    author = _doctor(r, department)
    r.add_note("入院记录", eid, author, admitted + timedelta(hours=6), notes.admission_sections(rng, facts))
    r.add_note("出院记录", eid, author, discharged, notes.discharge_sections(rng, facts, admitted))
