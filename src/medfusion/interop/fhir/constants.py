"""FHIR R4 (4.0.1) system URIs and code maps used by the mapping, in one place."""

from __future__ import annotations

from medfusion.record.models import EncounterClass, NoteType

FHIR_VERSION = "4.0.1"
FHIR_VERSION_SYSTEM = "http://hl7.org/fhir/FHIR-version"
FHIR_MEDIA_TYPE = "application/fhir+json; fhirVersion=4.0"
ACCEPTED_VERSIONS = ("4.0", "4.3")  # R4, and R4B whose models match R4 for the resources we map

# 居民身份证号: the identifier root used by the national EHR shared-document standard (WS/T 500).
RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOCATION_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
GTS_ABBREVIATION = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
XHTML_NS = "http://www.w3.org/1999/xhtml"

# Our own namespace for what no public code system covers.
DIAGNOSIS_ROLE_EXTENSION = "urn:medfusion:fhir:StructureDefinition:diagnosis-role"
NOTE_TYPE_SYSTEM = "urn:medfusion:fhir:CodeSystem:clinical-note-type"
VACCINE_SYSTEM = "urn:medfusion:fhir:CodeSystem:vaccine"

ENCOUNTER_CLASS_TO_FHIR = {
    EncounterClass.outpatient: ("AMB", "门诊 ambulatory"),
    EncounterClass.inpatient: ("IMP", "住院 inpatient encounter"),
    EncounterClass.emergency: ("EMER", "急诊 emergency"),
}
FHIR_TO_ENCOUNTER_CLASS = {code: cls for cls, (code, _) in ENCOUNTER_CLASS_TO_FHIR.items()} | {
    "ACUTE": EncounterClass.inpatient,
    "NONAC": EncounterClass.inpatient,
    "SS": EncounterClass.inpatient,
    "OBSENC": EncounterClass.inpatient,
}
NOTE_TYPE_CODES = {t: t.name for t in NoteType}
