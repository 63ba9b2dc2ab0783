"""Our record → FHIR R4 JSON. One Bundle (type ``collection``) per patient chart, tagged with its FHIR
version; entries use deterministic ``urn:uuid`` full URLs so the same chart always exports the same bytes.

``fhir_extra`` (elements we do not model, kept on import) is merged back: keys we do not produce are
restored, and list items we do not produce are appended after ours.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from medfusion.interop.fhir import constants as c
from medfusion.interop.fhir.narrative import text_to_div
from medfusion.interop.fhir.raw import RawResource, model_hash
from medfusion.record.codes import (
    ATC_SYSTEM,
    ICD9CM3_SYSTEM,
    ICD10_CN_VERSION,
    ICD10_SYSTEM,
    LOINC_SYSTEM,
    UCUM_SYSTEM,
)
from medfusion.record.models import (
    AllergyIntolerance,
    ClinicalNote,
    Coding,
    Condition,
    Encounter,
    Immunization,
    MedicationRequest,
    Observation,
    Patient,
    PatientChart,
    Procedure,
    RecordModel,
)
from medfusion.record.surnames import split_name
from medfusion.record.units import ucum_code

_NAMESPACE = uuid.UUID("6f1c2a52-8d0e-4b8e-9b1f-4d4d2e6f0a11")

RESOURCE_TYPES = {
    "encounters": "Encounter",
    "conditions": "Condition",
    "observations": "Observation",
    "procedures": "Procedure",
    "medications": "MedicationRequest",
    "allergies": "AllergyIntolerance",
    "immunizations": "Immunization",
    "notes": "Composition",
}


def full_url(resource_type: str, patient_id: str, resource_id: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{resource_type}/{patient_id}/{resource_id}')}"


def _time(value: datetime | date) -> str:
    return value.isoformat()


def _quantity(value: float, unit: str, field: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM_SYSTEM, "code": ucum_code(unit, field)}


def _concept(
    system: str, code: str, display: str | None = None, version: str | None = None
) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system}
    if version:
        coding["version"] = version
    coding["code"] = code
    if display:
        coding["display"] = display
    return coding


def _code(ours: dict[str, Any] | None, others: list[Coding], text: str | None) -> dict[str, Any]:
    """``{"code": CodeableConcept}``: our coding first, then the source's other codings as sent."""
    codings = ([ours] if ours else []) + [o.model_dump(exclude_none=True) for o in others]
    concept: dict[str, Any] = {}
    if codings:
        concept["coding"] = codings
    if text:
        concept["text"] = text
    return {"code": concept} if concept else {}


def _with_extra(resource: dict[str, Any], model: RecordModel) -> dict[str, Any]:
    for key, value in model.fhir_extra.items():
        if key not in resource:
            resource[key] = value
        elif isinstance(resource[key], list) and isinstance(value, list):
            resource[key] = resource[key] + value
    return resource


def _refs(patient_id: str, encounter_id: str | None, *, subject_key: str = "subject") -> dict[str, Any]:
    refs: dict[str, Any] = {subject_key: {"reference": f"Patient/{patient_id}"}}
    if encounter_id:
        refs["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    return refs


def _human_name(text: str) -> dict[str, Any]:
    name: dict[str, Any] = {"use": "official", "text": text}
    if " " in text.strip():  # written given-first (a foreign name): the last word is the family name
        *given_names, family = text.split()
        name["family"] = family
        name["given"] = given_names
        return name
    family, given = split_name(text)
    name["family"] = family
    if given:
        name["given"] = [given]
    return name


def patient_resource(p: Patient) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Patient", "id": p.id}
    if p.id_number:
        res["identifier"] = [{"use": "official", "system": c.RESIDENT_ID_SYSTEM, "value": p.id_number}]
    if p.name:
        res["name"] = [_human_name(p.name)]
    if p.phone:
        use = "mobile" if p.phone.lstrip("+").removeprefix("86").startswith("1") else "home"
        res["telecom"] = [{"system": "phone", "value": p.phone, "use": use}]
    res["gender"] = p.sex.value
    if p.birth_date is not None:
        res["birthDate"] = p.birth_date.isoformat()
    if p.address:
        a = p.address
        addr: dict[str, Any] = {"use": "home"}
        if a.text:
            addr["text"] = a.text
        if a.line:
            addr["line"] = [a.line]
        for ours, theirs in (("city", "city"), ("district", "district"), ("province", "state")):
            if getattr(a, ours):
                addr[theirs] = getattr(a, ours)
        if a.postal_code:
            addr["postalCode"] = a.postal_code
        addr["country"] = a.country or "CN"
        res["address"] = [addr]
    return _with_extra(res, p)


def encounter_resource(e: Encounter, patient_id: str) -> dict[str, Any]:
    code, display = c.ENCOUNTER_CLASS_TO_FHIR[e.encounter_class]
    period: dict[str, Any] = {}
    if e.admitted_at:
        period["start"] = _time(e.admitted_at)
    if e.discharged_at:
        period["end"] = _time(e.discharged_at)
    res: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": e.id,
        "status": e.status.value,
        "class": _concept(c.V3_ACT_CODE, code, display),
    }
    if e.department:
        res["serviceType"] = {"text": e.department}
    res.update(_refs(patient_id, None))
    if period:
        res["period"] = period
    locations = []
    for value, kind in ((e.ward, "wa"), (e.bed, "bd")):
        if value:
            locations.append(
                {
                    "location": {"display": value},
                    "physicalType": {"coding": [_concept(c.LOCATION_TYPE, kind)]},
                }
            )
    if locations:
        res["location"] = locations
    return _with_extra(res, e)


def condition_resource(cond: Condition, patient_id: str) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cond.id,
        "extension": [{"url": c.DIAGNOSIS_ROLE_EXTENSION, "valueCode": cond.role.value}],
        "clinicalStatus": {"coding": [_concept(c.CONDITION_CLINICAL, cond.clinical_status.value)]},
        **_code(
            _concept(ICD10_SYSTEM, cond.icd10_code, cond.name, ICD10_CN_VERSION) if cond.icd10_code else None,
            cond.codings,
            cond.name,
        ),
        **_refs(patient_id, cond.encounter_id),
    }
    if cond.onset_date:
        res["onsetDateTime"] = cond.onset_date.isoformat()
    if cond.recorded_at:
        res["recordedDate"] = _time(cond.recorded_at)
    return _with_extra(res, cond)


def observation_resource(o: Observation, patient_id: str) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": o.id,
        "status": "final",
        "category": [{"coding": [_concept(c.OBSERVATION_CATEGORY, o.category.value)]}],
        **_code(_concept(LOINC_SYSTEM, o.loinc_code, o.name) if o.loinc_code else None, o.codings, o.name),
        **_refs(patient_id, o.encounter_id),
    }
    if o.effective_at:
        res["effectiveDateTime"] = _time(o.effective_at)
    if o.value is not None:
        res["valueQuantity"] = _quantity(o.value, o.unit, "unit") if o.unit else {"value": o.value}
    elif o.value_text is not None:
        res["valueString"] = o.value_text
    if o.flag is not None:
        res["interpretation"] = [{"coding": [_concept(c.INTERPRETATION, o.flag.value)]}]
    if o.reference_low is not None or o.reference_high is not None:
        rng: dict[str, Any] = {}
        for key, bound in (("low", o.reference_low), ("high", o.reference_high)):
            if bound is not None:
                rng[key] = _quantity(bound, o.unit, "unit") if o.unit else {"value": bound}
        res["referenceRange"] = [rng]
    return _with_extra(res, o)


def procedure_resource(p: Procedure, patient_id: str) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": p.id,
        "status": p.status,
        **_code(
            _concept(ICD9CM3_SYSTEM, p.icd9cm3_code, p.name) if p.icd9cm3_code else None, p.codings, p.name
        ),
        **_refs(patient_id, p.encounter_id),
    }
    if p.performed_at:
        res["performedDateTime"] = _time(p.performed_at)
    return _with_extra(res, p)


def medication_resource(m: MedicationRequest, patient_id: str) -> dict[str, Any]:
    concept = _code(
        _concept(ATC_SYSTEM, m.atc_code, m.drug_name) if m.atc_code else None, m.codings, m.drug_name
    )
    bounds: dict[str, Any] = {}
    if m.start:
        bounds["start"] = _time(m.start)
    if m.stop:
        bounds["end"] = _time(m.stop)
    timing: dict[str, Any] = {"repeat": {"boundsPeriod": bounds}} if bounds else {}
    if m.frequency:
        timing["code"] = {"coding": [_concept(c.GTS_ABBREVIATION, m.frequency)], "text": m.frequency}
    dosage: dict[str, Any] = {"timing": timing} if timing else {}
    if m.route:
        dosage["route"] = {"text": m.route}
    if m.dose is not None and m.dose_unit:
        dosage["doseAndRate"] = [{"doseQuantity": _quantity(m.dose, m.dose_unit, "dose_unit")}]
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": m.id,
        "status": m.status.value,
        "intent": "order",
        "medicationCodeableConcept": concept["code"],
        **_refs(patient_id, m.encounter_id),
    }
    if m.start:
        res["authoredOn"] = _time(m.start)
    if dosage:
        res["dosageInstruction"] = [dosage]
    return _with_extra(res, m)


def allergy_resource(a: AllergyIntolerance, patient_id: str) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": a.id,
        "category": [a.category.value],
        "code": {"text": a.substance},
        **_refs(patient_id, None, subject_key="patient"),
    }
    if a.criticality:
        res["criticality"] = a.criticality
    if a.recorded_date:
        res["recordedDate"] = a.recorded_date.isoformat()
    if a.reaction:
        reaction: dict[str, Any] = {"manifestation": [{"text": a.reaction}]}
        if a.severity:
            reaction["severity"] = a.severity
        res["reaction"] = [reaction]
    return _with_extra(res, a)


def immunization_resource(i: Immunization, patient_id: str) -> dict[str, Any]:
    vaccine: dict[str, Any] = {"text": i.vaccine_name}
    if i.vaccine_code:
        vaccine = {
            "coding": [_concept(c.VACCINE_SYSTEM, i.vaccine_code, i.vaccine_name)],
            "text": i.vaccine_name,
        }
    res: dict[str, Any] = {
        "resourceType": "Immunization",
        "id": i.id,
        "status": i.status,
        "vaccineCode": vaccine,
        **_refs(patient_id, None, subject_key="patient"),
        "occurrenceDateTime": _time(i.occurred_at),
    }
    if i.lot_number:
        res["lotNumber"] = i.lot_number
    if i.dose_number is not None:
        res["protocolApplied"] = [{"doseNumberPositiveInt": i.dose_number}]
    return _with_extra(res, i)


def composition_resource(n: ClinicalNote, patient_id: str) -> dict[str, Any]:
    sections = []
    for s in n.sections:
        section: dict[str, Any] = {}
        if s.title:
            section["title"] = s.title
        section["text"] = {"status": "generated", "div": text_to_div(s.text)}
        sections.append(section)
    res: dict[str, Any] = {
        "resourceType": "Composition",
        "id": n.id,
        "status": "final",
        "type": {
            "coding": [_concept(c.NOTE_TYPE_SYSTEM, c.NOTE_TYPE_CODES[n.note_type], n.note_type.value)],
            "text": n.note_type.value,
        },
        **_refs(patient_id, n.encounter_id),
        "date": _time(n.written_at),
        **({"author": [{"display": n.author}]} if n.author else {}),
        "title": n.title,
        "section": sections,
    }
    return _with_extra(res, n)


_BUILDERS = {
    "encounters": encounter_resource,
    "conditions": condition_resource,
    "observations": observation_resource,
    "procedures": procedure_resource,
    "medications": medication_resource,
    "allergies": allergy_resource,
    "immunizations": immunization_resource,
    "notes": composition_resource,
}


def chart_resources(chart: PatientChart, raw: Sequence[RawResource] = ()) -> list[dict[str, Any]]:
    """The chart as FHIR resources. With ``raw`` (what an import received, from the store): an item still
    as imported (same ``model_hash``) is written back as the resource received, unchanged; then the
    resources the record does not hold (Claim, CarePlan …) follow, as received."""
    pid = chart.patient.id
    received = {(r.resource_type, r.resource_id): r for r in raw if r.model_hash is not None}

    def out(rtype: str, item: RecordModel, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        kept = received.get((rtype, str(getattr(item, "id", ""))))
        if kept is not None and kept.model_hash == model_hash(item):
            return dict(kept.body)
        return build()

    resources = [out("Patient", chart.patient, lambda: patient_resource(chart.patient))]
    for kind, items in chart.children().items():
        builder = _BUILDERS[kind]
        for item in items:
            resources.append(out(RESOURCE_TYPES[kind], item, lambda b=builder, i=item: b(i, pid)))  # type: ignore[misc]
    resources.extend(dict(r.body) for r in raw if r.model_hash is None)
    return resources


def bundle_for(charts: list[PatientChart], raw: Sequence[RawResource] = ()) -> dict[str, Any]:
    """A ``collection`` Bundle holding the charts, tagged ``FHIR-version 4.0.1``."""
    entries = []
    for chart in charts:
        pid = chart.patient.id
        mine = [r for r in raw if r.patient_id == pid]
        for res in chart_resources(chart, mine):
            entries.append({"fullUrl": full_url(res["resourceType"], pid, res["id"]), "resource": res})
    return {
        "resourceType": "Bundle",
        "meta": {"tag": [{"system": c.FHIR_VERSION_SYSTEM, "code": c.FHIR_VERSION, "display": "FHIR R4"}]},
        "type": "collection",
        "entry": entries,
    }


def chart_to_bundle(chart: PatientChart, raw: Sequence[RawResource] = ()) -> dict[str, Any]:
    return bundle_for([chart], raw)
