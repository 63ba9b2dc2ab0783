"""The case an MDT discusses, read from a chart (database or FHIR Bundle): diagnoses with ICD-10 codes
(deduplicated across encounters; the primary first), abnormal key results, active medications, allergies
and procedures."""

from __future__ import annotations

from datetime import date

from medfusion.apps.mdt.models import CaseDiagnosis, MdtCase
from medfusion.record.clinical_time import sort_time
from medfusion.record.models import ConditionStatus, DiagnosisRole, MedicationStatus, PatientChart

_ACTIVE = {ConditionStatus.active, ConditionStatus.recurrence, ConditionStatus.relapse}


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def from_chart(chart: PatientChart, on: date | None = None) -> MdtCase:
    seen: dict[str, CaseDiagnosis] = {}
    for c in chart.conditions:
        if c.clinical_status not in _ACTIVE:
            continue
        key = (c.icd10_code or "").split(".")[0] + c.label
        primary = c.role is DiagnosisRole.primary
        if key not in seen or (primary and not seen[key].primary):
            seen[key] = CaseDiagnosis(name=c.label, icd10=c.code_label, primary=primary)
    diagnoses = sorted(seen.values(), key=lambda d: not d.primary)
    abnormal = [o for o in chart.observations if o.flag is not None and o.flag.value not in {"N"}]
    latest: dict[str, str] = {}
    for o in sorted(abnormal, key=lambda o: sort_time(o.effective_at)):
        value = f"{o.value:g}" if o.value is not None else (o.value_text or "")
        latest[o.name] = f"{o.name} {value}{o.unit or ''}（{o.flag.value if o.flag else ''}）"
    return MdtCase(
        patient_id=chart.patient.id,
        sex=chart.patient.sex.value,
        age=age_on(chart.patient.birth_date, on or date.today()) if chart.patient.birth_date else None,
        diagnoses=diagnoses,
        key_results=list(latest.values())[-12:],
        medications=list(
            dict.fromkeys(m.drug_name for m in chart.medications if m.status == MedicationStatus.active)
        ),
        allergies=list(dict.fromkeys(a.substance for a in chart.allergies)),
        procedures=list(dict.fromkeys(p.name for p in chart.procedures))[-10:],
    )
