"""FHIR R4 JSON → keyword arguments of our record models, one small reader per resource type.

Each reader returns the model's fields and what it consumed: whole top-level keys, or for list-valued
elements the indices of the items it used. The importer keeps everything else in ``fhir_extra``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from medfusion.errors import InvalidFhir
from medfusion.interop.fhir import constants as c
from medfusion.interop.fhir.narrative import div_to_text
from medfusion.record.codes import ATC_SYSTEM, ICD9CM3_SYSTEM, ICD10_SYSTEM, LOINC_SYSTEM, UCUM_SYSTEM
from medfusion.record.models import NoteType
from medfusion.record.units import KNOWN_UNITS, display_unit

Json = dict[str, Any]


@dataclass
class Reading:
    fields: Json = field(default_factory=dict)
    consumed: dict[str, set[int] | None] = field(default_factory=dict)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (path, message) for changed values

    def take(self, key: str, index: int | None = None) -> None:
        if index is None:
            self.consumed[key] = None
        else:
            current = self.consumed.setdefault(key, set())
            if current is not None:
                current.add(index)


class Skip(Exception):
    """This resource is valid FHIR but outside what the record models; report and skip it."""


def fail(path: str, message: str) -> InvalidFhir:
    return InvalidFhir.for_field(path, message)


def _pick(items: Any, predicate: Callable[[Json], bool]) -> tuple[int, Json] | None:
    if not isinstance(items, list):
        return None
    for index, item in enumerate(items):
        if isinstance(item, dict) and predicate(item):
            return index, item
    return None


def _coding(concept: Json | None, system: str) -> Json | None:
    found = _pick((concept or {}).get("coding"), lambda cd: cd.get("system") == system)
    return found[1] if found else None


def _concept_text(concept: Json | None) -> str | None:
    if not concept:
        return None
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if coding.get("display"):
            return str(coding["display"])
    return None


def _unit(quantity: Json, path: str) -> str | None:
    unit = quantity.get("unit")
    if unit in KNOWN_UNITS:
        return str(unit)
    code = quantity.get("code")
    if code and quantity.get("system") == UCUM_SYSTEM:
        return display_unit(str(code), f"{path}.code")
    if unit is None and code is None:
        return None
    return display_unit(str(unit), f"{path}.unit")


def _date_part(value: str | None) -> str | None:
    return value[:10] if value else None


def read_patient(res: Json) -> Reading:
    r = Reading()
    r.take("id")
    r.fields["id"] = res.get("id")
    found = _pick(res.get("identifier"), lambda i: i.get("system") == c.RESIDENT_ID_SYSTEM)
    if found:
        r.take("identifier", found[0])
        r.fields["id_number"] = found[1].get("value")
    names = res.get("name") or []
    found = _pick(names, lambda n: n.get("use") == "official") or _pick(names, lambda n: True)
    if not found:
        raise fail("name", "患者须有姓名 Patient.name is required")
    r.take("name", found[0])
    name = found[1]
    r.fields["name"] = name.get("text") or (name.get("family") or "") + "".join(name.get("given") or [])
    found = _pick(res.get("telecom"), lambda t: t.get("system") == "phone")
    if found:
        r.take("telecom", found[0])
        r.fields["phone"] = found[1].get("value")
    r.take("gender")
    r.fields["sex"] = res.get("gender") or "unknown"
    r.take("birthDate")
    r.fields["birth_date"] = res.get("birthDate")
    addresses = res.get("address") or []
    found = _pick(addresses, lambda a: a.get("use") == "home") or _pick(addresses, lambda a: True)
    if found:
        r.take("address", found[0])
        a = found[1]
        lines = a.get("line") or []
        r.fields["address"] = {
            "province": a.get("state"),
            "city": a.get("city"),
            "district": a.get("district"),
            "line": "".join(lines) or None,
            "postal_code": a.get("postalCode"),
        }
    return r


def _encounter_ref(res: Json, r: Reading, resolve: Callable[[str], str]) -> None:
    ref = (res.get("encounter") or {}).get("reference")
    r.take("encounter")
    r.fields["encounter_id"] = resolve(ref) if ref else None


_ENCOUNTER_STATUS = {"arrived": "in-progress", "triaged": "in-progress", "onleave": "in-progress"}


def read_encounter(res: Json, resolve: Callable[[str], str]) -> Reading:
    r = Reading()
    r.take("id")
    r.fields["id"] = res.get("id")
    code = (res.get("class") or {}).get("code")
    if code not in c.FHIR_TO_ENCOUNTER_CLASS:
        raise fail("class.code", f"不支持的就诊类别 unsupported encounter class {code!r} (AMB/IMP/EMER)")
    r.take("class")
    r.fields["encounter_class"] = c.FHIR_TO_ENCOUNTER_CLASS[code]
    status = res.get("status")
    r.take("status")
    if status in _ENCOUNTER_STATUS:
        r.notes.append(("status", f"{status} 记为 recorded as {_ENCOUNTER_STATUS[status]}"))
        status = _ENCOUNTER_STATUS[status]
    r.fields["status"] = status
    department = _concept_text(res.get("serviceType"))
    if not department:
        raise fail("serviceType", "就诊须注明科室 department (serviceType.text) is required")
    r.take("serviceType")
    r.fields["department"] = department
    period = res.get("period") or {}
    if not period.get("start"):
        raise fail("period.start", "就诊须有开始时间 period.start is required")
    r.take("period")
    r.fields["admitted_at"] = period["start"]
    r.fields["discharged_at"] = period.get("end")
    for index, loc in enumerate(res.get("location") or []):
        kind = (_coding(loc.get("physicalType"), c.LOCATION_TYPE) or {}).get("code")
        target = {"wa": "ward", "bd": "bed"}.get(kind or "")
        if target and target not in r.fields:
            r.take("location", index)
            r.fields[target] = (loc.get("location") or {}).get("display")
    return r


def read_condition(res: Json, resolve: Callable[[str], str]) -> Reading:
    r = Reading()
    r.take("id")
    r.fields["id"] = res.get("id")
    found = _pick(res.get("extension"), lambda e: e.get("url") == c.DIAGNOSIS_ROLE_EXTENSION)
    if found:
        r.take("extension", found[0])
        r.fields["role"] = found[1].get("valueCode")
    status = (_coding(res.get("clinicalStatus"), c.CONDITION_CLINICAL) or {}).get("code")
    if status:
        r.take("clinicalStatus")
        r.fields["clinical_status"] = status
    coding = _coding(res.get("code"), ICD10_SYSTEM)
    if not coding or not coding.get("code"):
        raise fail("code.coding", f"诊断须有 ICD-10 编码 a coding with system {ICD10_SYSTEM} is required")
    r.take("code")
    r.fields["icd10_code"] = coding["code"]
    r.fields["name"] = _concept_text(res.get("code")) or coding["code"]
    if res.get("onsetDateTime"):
        r.take("onsetDateTime")
        r.fields["onset_date"] = _date_part(res["onsetDateTime"])
    if res.get("recordedDate"):
        r.take("recordedDate")
        r.fields["recorded_at"] = res["recordedDate"]
    _encounter_ref(res, r, resolve)
    return r


def read_observation(res: Json, resolve: Callable[[str], str]) -> Reading:
    r = Reading()
    r.take("id")
    r.fields["id"] = res.get("id")
    category = None
    for index, concept in enumerate(res.get("category") or []):
        code = (_coding(concept, c.OBSERVATION_CATEGORY) or {}).get("code")
        if code in ("vital-signs", "laboratory"):
            category = code
            r.take("category", index)
            break
    if category is None:
        raise Skip("只导入生命体征与检验结果 only vital-signs and laboratory observations are imported")
    r.fields["category"] = category
    r.take("status")
    loinc = _coding(res.get("code"), LOINC_SYSTEM)
    r.take("code")
    r.fields["loinc_code"] = loinc.get("code") if loinc else None
    name = _concept_text(res.get("code"))
    if not name:
        raise fail("code.text", "检查项目须有名称 Observation.code needs text or a display")
    r.fields["name"] = name
    if "valueQuantity" in res:
        q = res["valueQuantity"]
        r.take("valueQuantity")
        r.fields["value"] = q.get("value")
        r.fields["unit"] = _unit(q, "valueQuantity")
    elif "valueString" in res:
        r.take("valueString")
        r.fields["value_text"] = res["valueString"]
    elif "valueCodeableConcept" in res:
        r.take("valueCodeableConcept")
        r.fields["value_text"] = _concept_text(res["valueCodeableConcept"])
        r.notes.append(("valueCodeableConcept", "编码结果以文字保存 coded value kept as text"))
    else:
        raise fail("value[x]", "需要 valueQuantity、valueString 或 valueCodeableConcept")
    ranges = res.get("referenceRange") or []
    if ranges:
        r.take("referenceRange", 0)
        r.fields["reference_low"] = (ranges[0].get("low") or {}).get("value")
        r.fields["reference_high"] = (ranges[0].get("high") or {}).get("value")
    interpretations = res.get("interpretation") or []
    if interpretations:
        code = (_coding(interpretations[0], c.INTERPRETATION) or {}).get("code")
        if code in {"N", "H", "L", "HH", "LL", "A"}:
            r.take("interpretation", 0)
            r.fields["flag"] = code
    when = (
        res.get("effectiveDateTime") or (res.get("effectivePeriod") or {}).get("start") or res.get("issued")
    )
    if not when:
        raise fail("effectiveDateTime", "检查结果须有时间 effective time is required")
    for key in ("effectiveDateTime", "effectivePeriod", "issued"):
        if key in res:
            r.take(key)
            break
    r.fields["effective_at"] = when
    _encounter_ref(res, r, resolve)
    return r


def read_procedure(res: Json, resolve: Callable[[str], str]) -> Reading:
    r = Reading()
    r.take("id")
    r.fields["id"] = res.get("id")
    coding = _coding(res.get("code"), ICD9CM3_SYSTEM)
    if not coding or not coding.get("code"):
        raise fail(
            "code.coding", f"手术操作须有 ICD-9-CM-3 编码 a coding with system {ICD9CM3_SYSTEM} is required"
        )
    r.take("code")
    r.fields["icd9cm3_code"] = coding["code"]
    r.fields["name"] = _concept_text(res.get("code")) or coding["code"]
    r.take("status")
    r.fields["status"] = res.get("status") or "completed"
    when = res.get("performedDateTime") or (res.get("performedPeriod") or {}).get("start")
    if not when:
        raise fail("performedDateTime", "须有操作时间 performed time is required")
    r.take("performedDateTime" if "performedDateTime" in res else "performedPeriod")
    r.fields["performed_at"] = when
    _encounter_ref(res, r, resolve)
    return r


def read_medication(res: Json, resolve: Callable[[str], str]) -> Reading:
    r = Reading()
    r.take("id")
    r.fields["id"] = res.get("id")
    concept = res.get("medicationCodeableConcept")
    if concept is None:
        display = (res.get("medicationReference") or {}).get("display")
        if not display:
            raise fail("medication[x]", "需要 medicationCodeableConcept 或带 display 的 medicationReference")
        r.take("medicationReference")
        r.fields["drug_name"] = display
    else:
        r.take("medicationCodeableConcept")
        atc = _coding(concept, ATC_SYSTEM)
        r.fields["atc_code"] = atc.get("code") if atc else None
        r.fields["drug_name"] = _concept_text(concept)
    r.take("status")
    r.fields["status"] = res.get("status")
    r.take("intent")
    dosages = res.get("dosageInstruction") or []
    dosage = dosages[0] if dosages else {}
    if dosages:
        r.take("dosageInstruction", 0)
    timing = dosage.get("timing") or {}
    bounds = (timing.get("repeat") or {}).get("boundsPeriod") or {}
    start = bounds.get("start") or res.get("authoredOn")
    if not start:
        raise fail(
            "authoredOn", "医嘱须有开始时间 authoredOn or timing.repeat.boundsPeriod.start is required"
        )
    if "authoredOn" in res:
        r.take("authoredOn")
    r.fields["start"] = start
    r.fields["stop"] = bounds.get("end")
    frequency = (_coding(timing.get("code"), c.GTS_ABBREVIATION) or {}).get("code")
    r.fields["frequency"] = frequency
    r.fields["route"] = _concept_text(dosage.get("route"))
    rates = dosage.get("doseAndRate") or []
    if rates and rates[0].get("doseQuantity"):
        q = rates[0]["doseQuantity"]
        r.fields["dose"] = q.get("value")
        r.fields["dose_unit"] = _unit(q, "dosageInstruction[0].doseAndRate[0].doseQuantity")
    _encounter_ref(res, r, resolve)
    return r


def read_allergy(res: Json, resolve: Callable[[str], str]) -> Reading:
    r = Reading()
    r.take("id")
    r.fields["id"] = res.get("id")
    substance = _concept_text(res.get("code"))
    if not substance:
        raise fail("code", "过敏须注明过敏原 AllergyIntolerance.code is required")
    r.take("code")
    r.fields["substance"] = substance
    categories = res.get("category") or []
    if categories:
        r.take("category", 0)
        r.fields["category"] = categories[0]
    for key, ours in (("criticality", "criticality"), ("recordedDate", "recorded_date")):
        if key in res:
            r.take(key)
            r.fields[ours] = _date_part(res[key]) if key == "recordedDate" else res[key]
    reactions = res.get("reaction") or []
    if reactions:
        r.take("reaction", 0)
        r.fields["reaction"] = _concept_text((reactions[0].get("manifestation") or [None])[0])
        r.fields["severity"] = reactions[0].get("severity")
    return r


def read_immunization(res: Json, resolve: Callable[[str], str]) -> Reading:
    r = Reading()
    r.take("id")
    r.fields["id"] = res.get("id")
    vaccine = res.get("vaccineCode")
    name = _concept_text(vaccine)
    if not name:
        raise fail("vaccineCode", "须注明疫苗 vaccineCode needs text or a display")
    r.take("vaccineCode")
    r.fields["vaccine_name"] = name
    coding = _coding(vaccine, c.VACCINE_SYSTEM)
    r.fields["vaccine_code"] = coding.get("code") if coding else None
    r.take("status")
    r.fields["status"] = res.get("status")
    if not res.get("occurrenceDateTime"):
        raise fail("occurrenceDateTime", "须有接种时间 occurrenceDateTime is required")
    r.take("occurrenceDateTime")
    r.fields["occurred_at"] = res["occurrenceDateTime"]
    if "lotNumber" in res:
        r.take("lotNumber")
        r.fields["lot_number"] = res["lotNumber"]
    applied = res.get("protocolApplied") or []
    if applied and "doseNumberPositiveInt" in applied[0]:
        r.take("protocolApplied", 0)
        r.fields["dose_number"] = applied[0]["doseNumberPositiveInt"]
    return r


_NOTE_BY_LABEL = {t.value: t for t in NoteType}


def read_composition(res: Json, resolve: Callable[[str], str]) -> Reading:
    r = Reading()
    r.take("id")
    r.fields["id"] = res.get("id")
    kind = res.get("type") or {}
    coding = _coding(kind, c.NOTE_TYPE_SYSTEM)
    if coding and coding.get("code") in NoteType.__members__:
        note_type = NoteType[coding["code"]]
    elif _concept_text(kind) in _NOTE_BY_LABEL:
        note_type = _NOTE_BY_LABEL[str(_concept_text(kind))]
    else:
        raise fail("type", f"未知文书类型 unknown note type; one of {list(_NOTE_BY_LABEL)}")
    r.take("type")
    r.fields["note_type"] = note_type
    r.take("status")
    r.take("date")
    r.fields["written_at"] = res.get("date")
    authors = res.get("author") or []
    if not authors or not authors[0].get("display"):
        raise fail("author[0].display", "文书须有作者姓名 author display is required")
    r.take("author", 0)
    r.fields["author"] = authors[0]["display"]
    r.take("title")
    r.fields["title"] = res.get("title")
    sections = []
    for index, section in enumerate(res.get("section") or []):
        div = (section.get("text") or {}).get("div")
        if div is None:
            raise fail(f"section[{index}].text.div", "章节须有文本 section narrative is required")
        text, flattened = div_to_text(div)
        if flattened:
            r.notes.append((f"section[{index}].text.div", "XHTML 标记已转为纯文本 markup flattened to text"))
        sections.append({"title": section.get("title"), "text": text})
    r.take("section")
    r.fields["sections"] = sections
    _encounter_ref(res, r, resolve)
    return r
