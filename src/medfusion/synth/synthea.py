"""Synthea-style FHIR R4 output of our synthetic residents (``synth population --format fhir --profile
synthea``): the shape Synthea (github.com/synthetichealth/synthea, FHIR R4 exporter) writes — a
``transaction`` Bundle, ``urn:uuid`` references, diagnoses and procedures coded in SNOMED CT only (no ICD),
medicines as text without ATC, a ``Claim`` per encounter — so imports of foreign-coded data are tested on
data we generate ourselves.

SNOMED CT concept ids for our catalogue (SNOMED CT International Edition, 2024-01; the same concepts
Synthea's modules use where they overlap). A diagnosis without an entry here is written with a local code
system, so the import's ``unmapped`` path is exercised too.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from medfusion.interop.fhir import chart_to_bundle
from medfusion.record.codes import ATC_SYSTEM, ICD9CM3_SYSTEM, ICD10_SYSTEM
from medfusion.record.models import PatientChart

SNOMED = "http://snomed.info/sct"
LOCAL_DIAGNOSIS = "urn:medfusion:synth:CodeSystem:local-diagnosis"

SNOMED_FOR_ICD10: dict[str, tuple[str, str]] = {
    "I10.x00x002": ("59621000", "Essential hypertension"),
    "E11.900": ("44054006", "Diabetes mellitus type 2"),
    "E78.500": ("55822004", "Hyperlipidemia"),
    "N18.300": ("433144002", "Chronic kidney disease stage 3"),
    "J44.900": ("13645005", "Chronic obstructive lung disease"),
    "J44.100": ("195951007", "Acute exacerbation of chronic obstructive airways disease"),
    "I25.103": ("53741008", "Coronary arteriosclerosis"),
    "R51.x00": ("25064002", "Headache"),
    "J20.900": ("10509002", "Acute bronchitis"),
    "J06.900": ("54150009", "Upper respiratory infection"),
    "I69.300x002": ("230690007", "Cerebrovascular accident"),
}
SNOMED_FOR_ICD9CM3: dict[str, tuple[str, str]] = {
    "36.0601": ("36969009", "Placement of stent in coronary artery"),
}


def _recode(concept: dict[str, Any], system: str, table: dict[str, tuple[str, str]]) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for coding in concept.get("coding") or []:
        if coding.get("system") != system:
            out.append(coding)
            continue
        found = table.get(str(coding.get("code")))
        if found:
            out.append({"system": SNOMED, "code": found[0], "display": found[1]})
        else:
            out.append({"system": LOCAL_DIAGNOSIS, "code": str(coding.get("code")).replace(".", "-")})
    return {**concept, "coding": out}


def synthea_bundle(chart: PatientChart) -> dict[str, Any]:
    bundle = copy.deepcopy(chart_to_bundle(chart))
    url_of = {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["fullUrl"] for e in bundle["entry"]}

    def relink(value: Any) -> Any:
        if isinstance(value, dict):
            if isinstance(value.get("reference"), str) and value["reference"] in url_of:
                return {**value, "reference": url_of[value["reference"]]}
            return {k: relink(v) for k, v in value.items()}
        if isinstance(value, list):
            return [relink(v) for v in value]
        return value

    entries = []
    for entry in bundle["entry"]:
        res = relink(entry["resource"])
        rtype = res["resourceType"]
        if rtype == "Condition":
            res.pop("extension", None)
            res["code"] = _recode(res["code"], ICD10_SYSTEM, SNOMED_FOR_ICD10)
        elif rtype == "Procedure":
            res["code"] = _recode(res["code"], ICD9CM3_SYSTEM, SNOMED_FOR_ICD9CM3)
        elif rtype == "MedicationRequest":
            concept = res["medicationCodeableConcept"]
            coding = [c for c in concept.get("coding") or [] if c.get("system") != ATC_SYSTEM]
            res["medicationCodeableConcept"] = {
                "text": concept["text"],
                **({"coding": coding} if coding else {}),
            }
        entries.append(
            {"fullUrl": entry["fullUrl"], "resource": res, "request": {"method": "POST", "url": rtype}}
        )
    patient_url = entries[0]["fullUrl"]
    for entry in list(entries):
        res = entry["resource"]
        if res["resourceType"] != "Encounter":
            continue
        claim_id = f"claim-{res['id']}"
        claim = {
            "resourceType": "Claim",
            "id": claim_id,
            "status": "active",
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional"}
                ]
            },
            "use": "claim",
            "patient": {"reference": patient_url},
            "created": (res.get("period") or {}).get("start", "2024-01-01"),
            "provider": {"display": "上海市合成医院 synthetic hospital"},
            "priority": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}
                ]
            },
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "城镇职工基本医疗保险"}}],
            "item": [
                {
                    "sequence": 1,
                    "productOrService": {"text": "诊疗"},
                    "encounter": [{"reference": entry["fullUrl"]}],
                }
            ],
        }
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, entry['fullUrl'] + '/Claim')}",
                "resource": claim,
                "request": {"method": "POST", "url": "Claim"},
            }
        )
    return {**bundle, "type": "transaction", "entry": entries}
