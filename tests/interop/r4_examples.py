"""FHIR R4 (4.0.1) example Bundles written from the specification (hl7.org/fhir/R4: patient.html,
medicationrequest.html, condition.html, observation.html, procedure.html, claim.html,
explanationofbenefit.html, careplan.html, bundle.html §2.36.4 "Resolving references in Bundles"), shaped
like what Synthea and foreign EMRs send. Each one is valid R4 and was refused by the importer before issue 15.
"""

from __future__ import annotations

import copy
from typing import Any

Json = dict[str, Any]
PID = "urn:uuid:7d0f1a52-0000-4000-8000-000000000001"
EID = "urn:uuid:7d0f1a52-0000-4000-8000-000000000002"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"


def _patient(**changes: Any) -> Json:
    patient: Json = {
        "resourceType": "Patient",
        "id": "syn-1",
        "identifier": [{"system": "https://github.com/synthetichealth/synthea", "value": "syn-1"}],
        "name": [{"use": "official", "family": "Kuhn96", "given": ["Abe604"], "prefix": ["Mr."]}],
        "telecom": [{"system": "phone", "value": "555-401-7812", "use": "home"}],
        "gender": "male",
        "birthDate": "1961-05-09",
        "address": [
            {
                "line": ["1019 Hane Corner"],
                "city": "Boston",
                "state": "Massachusetts",
                "postalCode": "02108",
                "country": "US",
            }
        ],
    }
    patient.update(changes)
    return patient


def _encounter() -> Json:
    return {
        "resourceType": "Encounter",
        "id": "enc-1",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"coding": [{"system": SNOMED, "code": "185349003", "display": "Encounter for check up"}]}],
        "subject": {"reference": PID},
        "period": {"start": "2020-03-02T09:00:00-05:00", "end": "2020-03-02T09:30:00-05:00"},
    }


def bundle(
    *resources: Json, kind: str = "transaction", encounter: bool = True, patient: Json | None = None
) -> Json:
    entries: list[Json] = [{"fullUrl": PID, "resource": patient or _patient()}]
    if encounter:
        entries.append({"fullUrl": EID, "resource": _encounter()})
    for index, res in enumerate(resources):
        entries.append(
            {"fullUrl": f"urn:uuid:7d0f1a52-0000-4000-8000-1000000000{index:02d}", "resource": res}
        )
    if kind in ("transaction", "batch"):
        for entry in entries:
            entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def condition_snomed() -> Json:
    return {
        "resourceType": "Condition",
        "id": "cond-htn",
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "verificationStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
            ]
        },
        "code": {
            "coding": [{"system": SNOMED, "code": "59621000", "display": "Essential hypertension"}],
            "text": "Essential hypertension",
        },
        "subject": {"reference": PID},
        "encounter": {"reference": EID},
        "onsetDateTime": "2020-03-02T09:00:00-05:00",
        "recordedDate": "2020-03-02T09:00:00-05:00",
    }


def condition_local_unmapped() -> Json:
    return {
        "resourceType": "Condition",
        "id": "cond-local",
        "code": {
            "coding": [{"system": "urn:oid:1.2.3.4.5.local-dx", "code": "DX-0042", "display": "Lumbago"}]
        },
        "subject": {"reference": PID},
    }


def observation_loinc_without_effective() -> Json:
    return {
        "resourceType": "Observation",
        "id": "obs-hba1c",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {"system": LOINC, "code": "4548-4", "display": "Hemoglobin A1c/Hemoglobin.total in Blood"}
            ]
        },
        "subject": {"reference": PID},
        "valueQuantity": {"value": 6.1, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    }


def procedure_snomed_only() -> Json:
    return {
        "resourceType": "Procedure",
        "id": "proc-1",
        "status": "completed",
        "code": {
            "coding": [{"system": SNOMED, "code": "73761001", "display": "Colonoscopy"}],
            "text": "Colonoscopy",
        },
        "subject": {"reference": PID},
        "encounter": {"reference": EID},
        "performedPeriod": {"start": "2020-03-02T09:10:00-05:00", "end": "2020-03-02T09:25:00-05:00"},
    }


def medication_without_authored_on() -> Json:
    return {
        "resourceType": "MedicationRequest",
        "id": "med-1",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "314076",
                    "display": "lisinopril 10 MG Oral Tablet",
                }
            ],
            "text": "lisinopril 10 MG Oral Tablet",
        },
        "subject": {"reference": PID},
        "encounter": {"reference": EID},
    }


def medication_contained() -> Json:
    return {
        "resourceType": "MedicationRequest",
        "id": "med-2",
        "contained": [{"resourceType": "Medication", "id": "m1", "code": {"text": "阿莫西林胶囊"}}],
        "status": "completed",
        "intent": "order",
        "medicationReference": {"reference": "#m1"},
        "subject": {"reference": PID},
        "authoredOn": "2020-03-02",
    }


def composition_without_author_display() -> Json:
    return {
        "resourceType": "Composition",
        "id": "doc-1",
        "status": "final",
        "type": {"coding": [{"system": LOINC, "code": "11506-3", "display": "Progress note"}]},
        "subject": {"reference": PID},
        "date": "2020-03-02T10:00:00-05:00",
        "author": [{"reference": "Practitioner/pr-1"}],
        "title": "Progress note",
        "section": [
            {
                "title": "Assessment",
                "text": {
                    "status": "generated",
                    "div": '<div xmlns="http://www.w3.org/1999/xhtml">Stable.</div>',
                },
            }
        ],
    }


def unmapped_types() -> list[Json]:
    return [
        {"resourceType": "Organization", "id": "org-1", "name": "General Hospital"},
        {"resourceType": "Practitioner", "id": "pr-1", "name": [{"family": "Smith", "given": ["Ann"]}]},
        {
            "resourceType": "Claim",
            "id": "claim-1",
            "status": "active",
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}
                ]
            },
            "use": "claim",
            "patient": {"reference": PID},
            "created": "2020-03-02T09:30:00-05:00",
            "provider": {"reference": "Organization/org-1"},
            "priority": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}
                ]
            },
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Medicare"}}],
        },
        {
            "resourceType": "ExplanationOfBenefit",
            "id": "eob-1",
            "status": "active",
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}
                ]
            },
            "use": "claim",
            "patient": {"reference": PID},
            "created": "2020-03-02T09:30:00-05:00",
            "insurer": {"display": "Medicare"},
            "provider": {"reference": "Organization/org-1"},
            "outcome": "complete",
            "insurance": [{"focal": True, "coverage": {"display": "Medicare"}}],
        },
        {
            "resourceType": "CarePlan",
            "id": "cp-1",
            "status": "active",
            "intent": "order",
            "subject": {"reference": PID},
            "category": [
                {
                    "coding": [
                        {"system": SNOMED, "code": "698360004", "display": "Diabetes self management plan"}
                    ]
                }
            ],
        },
    ]


def examples() -> dict[str, Json]:
    """Every example Bundle by name."""
    return copy.deepcopy(
        {
            "patient_without_name": bundle(patient={k: v for k, v in _patient().items() if k != "name"}),
            "us_phone_and_address": bundle(),
            "medication_without_authored_on": bundle(medication_without_authored_on()),
            "snomed_condition": bundle(condition_snomed()),
            "local_code_condition": bundle(condition_local_unmapped(), kind="collection"),
            "loinc_observation_without_effective": bundle(
                observation_loinc_without_effective(), kind="batch"
            ),
            "procedure_snomed_only": bundle(procedure_snomed_only()),
            "contained_medication": bundle(medication_contained(), kind="collection"),
            "composition_without_author_display": bundle(composition_without_author_display()),
            "encounter_without_service_type": bundle(),
            "claim_eob_careplan": bundle(*unmapped_types()),
            "relative_reference_outside": bundle(
                {**condition_snomed(), "id": "cond-2", "encounter": {"reference": "Encounter/not-here"}},
                kind="collection",
            ),
        }
    )
