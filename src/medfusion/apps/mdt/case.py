"""The case an MDT discusses, read from a chart (database or FHIR Bundle) or from a case summary a
clinician pasted: diagnoses with ICD-10 codes (deduplicated across encounters; the primary first), abnormal
key results, active medications, allergies and procedures."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime

from pydantic import ValidationError

from medfusion.apps.mdt.models import CaseDiagnosis, MdtCase
from medfusion.errors import InvalidInput
from medfusion.graph import Graph
from medfusion.graph.lexicon import Mention
from medfusion.graph.model import EntityType
from medfusion.record.clinical_time import sort_time, today_local
from medfusion.record.models import (
    AllergyIntolerance,
    Condition,
    ConditionStatus,
    DiagnosisRole,
    MedicationRequest,
    MedicationStatus,
    Patient,
    PatientChart,
    Sex,
)

_ACTIVE = {ConditionStatus.active, ConditionStatus.recurrence, ConditionStatus.relapse}


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _key(c: Condition) -> str:
    return (c.icd10_code or "").split(".")[0] + c.label


def _principal(chart: PatientChart) -> str | None:
    """The principal diagnosis of the latest encounter that names one — a diagnosis that was principal at
    an earlier visit is a secondary one now (each encounter has its own 主要诊断)."""
    encounters = {e.id: e for e in chart.encounters}
    named = [c for c in chart.conditions if c.role is DiagnosisRole.primary and c.clinical_status in _ACTIVE]

    def when(c: Condition) -> datetime:
        encounter = encounters.get(c.encounter_id) if c.encounter_id else None
        return sort_time(encounter.admitted_at if encounter and encounter.admitted_at else c.recorded_at)

    return _key(max(named, key=when)) if named else None


def from_chart(chart: PatientChart, on: date | None = None) -> MdtCase:
    seen: dict[str, CaseDiagnosis] = {}
    principal = _principal(chart)
    for c in chart.conditions:
        if c.clinical_status not in _ACTIVE:
            continue
        key = _key(c)
        if key not in seen:
            seen[key] = CaseDiagnosis(name=c.label, icd10=c.code_label, primary=key == principal)
    diagnoses = sorted(seen.values(), key=lambda d: not d.primary)
    abnormal = [o for o in chart.observations if o.flag is not None and o.flag.value not in {"N"}]
    latest: dict[str, str] = {}
    for o in sorted(abnormal, key=lambda o: sort_time(o.effective_at)):
        value = f"{o.value:g}" if o.value is not None else (o.value_text or "")
        latest[o.name] = f"{o.name} {value}{o.unit or ''}（{o.flag.value if o.flag else ''}）"
    return MdtCase(
        patient_id=chart.patient.id,
        sex=chart.patient.sex.value,
        age=age_on(chart.patient.birth_date, on or today_local()) if chart.patient.birth_date else None,
        diagnoses=diagnoses,
        key_results=list(latest.values())[-12:],
        medications=list(
            dict.fromkeys(m.drug_name for m in chart.medications if m.status == MedicationStatus.active)
        ),
        allergies=list(dict.fromkeys(a.substance for a in chart.allergies)),
        procedures=list(dict.fromkeys(p.name for p in chart.procedures))[-10:],
    )


# --- a pasted case summary ----------------------------------------------------------------------------
# Clause breaks and negation cues follow the NegEx idea (Chapman et al., J Biomed Inform 2001;34:301-10) as
# the consult app reads chief complaints: a cue opening the clause a term sits in negates it (否认冠心病).
_CLAUSE = re.compile(r"[，。；;,.!?！？\n]|但|伴有|合并")
_NEGATION = re.compile(r"(无|否认|未|没有|不伴|未见|并无|排除|非)")
_ALLERGY = re.compile(r"过敏")
_PROPOSED = re.compile(r"(拟|计划|准备|打算)")
_AGE = re.compile(r"(\d{1,3})\s*(?:岁|周岁)")
_SEX = re.compile(r"(男|女)")
_DRUGS = (EntityType.drug, EntityType.drug_class)
_ALLERGENS = (*_DRUGS, EntityType.food)


@dataclass
class TextCase:
    """A pasted case as a chart (not stored), and what it proposes to do."""

    chart: PatientChart
    proposed_drugs: list[str] = field(default_factory=list)
    proposed_procedures: list[str] = field(default_factory=list)


def _clause(text: str, start: int) -> tuple[str, str]:
    """The clause (between breaks) the term at ``start`` stands in: whole, and up to the term."""
    begin = 0
    for m in _CLAUSE.finditer(text, 0, start):
        begin = m.end()
    end = _CLAUSE.search(text, start)
    return text[begin : end.start() if end else len(text)], text[begin:start]


def _best(mentions: list[Mention], types: tuple[EntityType, ...]) -> Mention | None:
    """Of the entities one surface names, the first of the most wanted type (a drug before its class)."""
    for wanted in types:
        for m in mentions:
            if m.entity.type == wanted:
                return m
    return None


def from_text(graph: Graph, text: str, on: date) -> TextCase:
    """A case summary (年龄、性别、诊断、在用药物、过敏、拟用药物) read into a chart by the graph's lexicon.

    Judgement calls: diagnoses are the graph's diseases with an ICD-10 code outside chapter XVIII (R00–R99
    are symptoms and signs, not diagnoses a team discusses); the first named is the principal one, as the
    病历书写基本规范 (卫医政发〔2010〕11号) lists the principal diagnosis first; "68岁" gives a birth date 68
    years before ``on``, so the case's age reads exactly as written; drugs in a clause naming 过敏 are
    allergies, in a clause opened by 拟/计划 proposals, otherwise current medications."""
    by_surface: dict[tuple[int, str], list[Mention]] = {}
    for m in graph.lexicon.mentions(text):
        by_surface.setdefault((m.start, m.surface), []).append(m)
    conditions: list[Condition] = []
    medications: list[str] = []
    allergies: list[str] = []
    proposed: list[str] = []
    procedures: list[str] = []
    for (start, surface), mentions in by_surface.items():
        whole, before = _clause(text, start)
        if _NEGATION.search(before):
            continue
        if _ALLERGY.search(whole):
            allergen = _best(mentions, _ALLERGENS)
            if allergen is not None and surface not in allergies:
                allergies.append(surface)
            continue
        drug = _best(mentions, _DRUGS)
        if _PROPOSED.search(before):
            if drug is not None and drug.entity.name not in proposed:
                proposed.append(drug.entity.name)
            procedure = _best(mentions, (EntityType.procedure,))
            if procedure is not None and procedure.entity.name not in procedures:
                procedures.append(procedure.entity.name)
            continue
        disease = _best(mentions, (EntityType.disease,))
        code = disease.entity.code if disease and disease.entity.code_system == "ICD-10" else None
        if disease is not None and code and not code.upper().startswith("R"):
            if all(c.name != disease.entity.name for c in conditions):
                try:
                    condition = Condition(
                        id=f"c{len(conditions) + 1}",
                        icd10_code=code,
                        name=disease.entity.name,
                        role=DiagnosisRole.primary if not conditions else DiagnosisRole.secondary,
                    )
                except ValidationError:  # a pack's code our ICD-10 check refuses: not a diagnosis to discuss
                    continue
                conditions.append(condition)
        elif drug is not None and drug.entity.name not in medications:
            medications.append(drug.entity.name)
    if not conditions:
        raise InvalidInput.for_field(
            "case",
            "没有从病例中识别出诊断，请写明诊断名称（如：心房颤动、2型糖尿病、慢性肾脏病） "
            "no coded diagnosis recognised",
            code="no_diagnoses",
        )
    return TextCase(
        chart=PatientChart(
            patient=_patient(text, on),
            conditions=conditions,
            medications=[
                MedicationRequest(id=f"m{i}", drug_name=name, status=MedicationStatus.active)
                for i, name in enumerate(medications, start=1)
            ],
            allergies=[AllergyIntolerance(id=f"a{i}", substance=s) for i, s in enumerate(allergies, start=1)],
        ),
        proposed_drugs=proposed,
        proposed_procedures=procedures,
    )


def _patient(text: str, on: date) -> Patient:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10].upper()
    age = _AGE.search(text)
    birth = None
    if age and 0 <= int(age.group(1)) <= 120:
        years = on.year - int(age.group(1))
        birth = on.replace(year=years, day=28) if (on.month, on.day) == (2, 29) else on.replace(year=years)
    sex = _SEX.search(text[:60])
    shown = {"男": Sex.male, "女": Sex.female}[sex.group(1)] if sex else Sex.unknown
    return Patient(id=f"TEXT-{digest}", sex=shown, birth_date=birth)
