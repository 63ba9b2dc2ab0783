"""FHIR R4 JSON → keyword arguments of our record models, one small reader per resource type.

Each reader returns the model's fields and what it consumed: whole top-level keys, or for list-valued
elements the indices of the items it used. The importer keeps everything else in ``fhir_extra``.

Cardinality follows R4 (4.0.1): an element R4 lets be absent (``Patient.name``, ``Encounter.serviceType``,
``Condition.code``'s ICD-10 coding, ``Observation.effective[x]``, ``MedicationRequest.authoredOn`` …) reads
as ``None`` — unknown, never invented. With ``Context.strict`` (the ``medfusion-strict`` profile, for feeds
we control) they are required as before. A value the record cannot hold exactly (a unit outside our table, a
partial date, a value type we do not model) is left unconsumed, so it stays in ``fhir_extra`` verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from medfusion.errors import InvalidFhir, MedFusionError
from medfusion.interop.fhir import constants as c
from medfusion.interop.fhir.code_maps import CodeMapper, Target
from medfusion.interop.fhir.narrative import div_to_text
from medfusion.record.codes import (
    ATC_SYSTEM,
    ICD9CM3_SYSTEM,
    ICD10_SYSTEM,
    LOINC_SYSTEM,
    UCUM_SYSTEM,
    check_icd9cm3,
    check_icd10,
)
from medfusion.record.models import NoteType, is_chinese_phone
from medfusion.record.units import KNOWN_UNITS, display_unit

Json = dict[str, Any]
_FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass
class Reading:
    fields: Json = field(default_factory=dict)
    consumed: dict[str, set[int] | None] = field(default_factory=dict)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (path, message) for changed values
    warnings: list[tuple[str, str]] = field(default_factory=list)  # stored as given, but worth a look
    mapped: list[tuple[str, str]] = field(default_factory=list)  # translated to ICD-10 / ICD-9-CM-3
    unmapped: list[tuple[str, str]] = field(default_factory=list)  # kept with the source's codings only

    def take(self, key: str, index: int | None = None) -> None:
        if index is None:
            self.consumed[key] = None
        else:
            current = self.consumed.setdefault(key, set())
            if current is not None:
                current.add(index)


@dataclass
class Context:
    """How to read: the profile (``strict``: today's medfusion rules), how encounter references resolve
    (to an encounter of the chart, else ``None`` — the reference is then kept verbatim), the code mapper."""

    strict: bool = False
    resolve: Callable[[str], str | None] = lambda _ref: None
    mapper: CodeMapper | None = None
    contained: dict[str, Json] = field(default_factory=dict)


class Skip(Exception):
    """This resource is valid FHIR but outside what the record models; it is kept raw and reported."""


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


def _first_code(concept: Json | None) -> str | None:
    for coding in (concept or {}).get("coding") or []:
        if coding.get("code"):
            return str(coding["code"])
    return None


def _name(concept: Json | None, r: Reading, path: str) -> str | None:
    """The concept's text or display; else (a coding with a code only) the code itself, said so."""
    text = _concept_text(concept)
    if text:
        return text[:200]
    code = _first_code(concept)
    if code:
        r.notes.append((path, f"无文字，以编码 {code!r} 作名称 no text or display, the code names it"))
    return code


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


def _soft_unit(quantity: Json, path: str, ctx: Context) -> tuple[bool, str | None]:
    """(readable, unit): outside the strict profile a unit we do not convert is not an error — the caller
    leaves the quantity unconsumed (kept verbatim)."""
    if ctx.strict:
        return True, _unit(quantity, path)
    try:
        return True, _unit(quantity, path)
    except MedFusionError:
        return False, None


def _date_part(value: str | None) -> str | None:
    return value[:10] if value else None


def _when(res: Json, key: str, r: Reading, ctx: Context) -> str | None:
    """A dateTime element: taken when it is at least a full date; a partial one (``2019``, ``2019-03``)
    is valid R4 but not an instant — outside the strict profile it stays verbatim in ``fhir_extra``."""
    value = res.get(key)
    if not isinstance(value, str) or not value:
        return None
    if not ctx.strict and not _FULL_DATE.match(value):
        r.notes.append((key, f"部分日期 {value!r} 原样保留，时间记为未知 partial date kept verbatim"))
        return None
    r.take(key)
    return value


def _codings_except(concept: Json | None, index: int | None) -> list[Json]:
    return [cd for i, cd in enumerate((concept or {}).get("coding") or []) if i != index]


def _coded(
    res: Json, r: Reading, ctx: Context, *, system: str, target: Target, field_name: str, label: str
) -> None:
    """Pick the coding in the record's system; keep every other coding; map when it is missing."""
    concept = res.get("code")
    found = _pick((concept or {}).get("coding"), lambda cd: cd.get("system") == system)
    check = check_icd10 if target == "icd10" else check_icd9cm3
    code: str | None = None
    index: int | None = None
    if found and found[1].get("code"):
        try:  # the strict profile leaves the shape check to the model (an error there, as before)
            code = str(found[1]["code"]) if ctx.strict else check(str(found[1]["code"]))
            index = found[0]
        except ValueError:
            r.warnings.append(
                ("code.coding", f"{label} 编码形态无效，作为来源编码保留 kept as a source coding")
            )
    if code is None and ctx.strict:
        raise fail("code.coding", f"须有 {label} 编码 a coding with system {system} is required")
    if concept is not None:
        r.take("code")
    others = _codings_except(concept, index)
    r.fields["codings"] = others
    r.fields["name"] = _name(concept, r, "code") or code
    if code is None and ctx.mapper is not None:
        code = ctx.mapper(target, others, _concept_text(concept))
        if code is not None:
            r.fields["coding_status"] = "mapped"
            r.mapped.append(("code", f"映射为 mapped to {label} {code}"))
    if code is None:
        systems = sorted({str(cd.get("system")) for cd in others if cd.get("system")}) or ["text only"]
        r.unmapped.append(
            ("code", f"无 {label} 编码，保留来源编码 no {label} code; kept {', '.join(systems)}")
        )
    r.fields[field_name] = code


def read_patient(res: Json, ctx: Context | None = None) -> Reading:
    ctx = ctx or Context()
    r = Reading()
    r.take("id")
    r.fields["id"] = res.get("id")
    found = _pick(res.get("identifier"), lambda i: i.get("system") == c.RESIDENT_ID_SYSTEM)
    if found:  # validated by GB 11643 in the model, because the system says it is a 身份证号
        r.take("identifier", found[0])
        r.fields["id_number"] = found[1].get("value")
    names = res.get("name") or []
    found = _pick(names, lambda n: n.get("use") == "official") or _pick(names, lambda n: True)
    if found:
        name = found[1]
        given = [str(g) for g in name.get("given") or []]
        family = str(name.get("family") or "")
        text = name.get("text")
        if not text and (family or given):
            # Chinese names are written family-first without a space; others given-first, space-separated
            cjk = any("\u4e00" <= ch <= "\u9fff" for ch in family + "".join(given))
            text = family + "".join(given) if cjk else " ".join([*given, family]).strip()
        if text:
            r.take("name", found[0])
            r.fields["name"] = str(text)[:64]
    if "name" not in r.fields and ctx.strict:
        raise fail("name", "患者须有姓名 Patient.name is required")
    found = _pick(res.get("telecom"), lambda t: t.get("system") == "phone" and bool(t.get("value")))
    if found:
        value = str(found[1]["value"])
        if ctx.strict and not is_chinese_phone(value):
            raise fail(
                f"telecom[{found[0]}].value", "电话号码格式无效 (not a Chinese mobile or landline number)"
            )
        r.take("telecom", found[0])
        r.fields["phone"] = value
        countries = [str(a.get("country")) for a in res.get("address") or [] if isinstance(a, dict)]
        region = next((c_ for c_ in countries if len(c_) == 2 and c_.isalpha()), "CN").upper()
        warning = phone_warning(value, region)
        if warning:
            r.warnings.append((f"telecom[{found[0]}].value", warning))
    r.take("gender")
    r.fields["sex"] = res.get("gender") or "unknown"
    birth = res.get("birthDate")
    if not birth and ctx.strict:
        raise fail("birthDate", "患者须有出生日期 Patient.birthDate is required")
    if isinstance(birth, str) and not ctx.strict and not _FULL_DATE.match(birth):
        # R4 Patient.birthDate is 0..1 and may be partial (1961, 1961-05): kept verbatim, the date unknown
        r.notes.append(
            ("birthDate", f"部分出生日期 {birth!r} 原样保留，出生日期记为未知 partial date kept verbatim")
        )
    else:
        r.take("birthDate")
        r.fields["birth_date"] = birth
    addresses = res.get("address") or []
    found = _pick(addresses, lambda a: a.get("use") == "home") or _pick(addresses, lambda a: True)
    if found:
        r.take("address", found[0])
        a = found[1]
        lines = [str(x) for x in a.get("line") or []]
        cjk = any("\u4e00" <= ch <= "\u9fff" for ch in "".join(lines))
        r.fields["address"] = {
            "province": a.get("state"),
            "city": a.get("city"),
            "district": a.get("district"),
            "line": ("" if cjk else ", ").join(lines) or None,
            "postal_code": a.get("postalCode"),
            "country": a.get("country") if a.get("country") != "CN" else None,
        }
    return r


def phone_warning(value: str, region: str = "CN") -> str | None:
    """A warning when the number cannot be read as a real telephone number (libphonenumber metadata; a
    number without a country code is read in the patient's address country, else as Chinese). Stored as
    given either way."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return "无法识别的电话号码，原样保存 not a recognisable telephone number, stored as given"
    if not phonenumbers.is_valid_number(number):
        return "电话号码无效（号段或长度不符），原样保存 not a valid number for its country, stored as given"
    return None


def _encounter_ref(res: Json, r: Reading, ctx: Context) -> None:
    ref = (res.get("encounter") or {}).get("reference")
    target = ctx.resolve(ref) if ref else None
    if ref and target is None:
        r.fields["encounter_id"] = None  # not in this chart: the reference itself is kept in fhir_extra
        return
    r.take("encounter")
    r.fields["encounter_id"] = target


_ENCOUNTER_STATUS = {"arrived": "in-progress", "triaged": "in-progress", "onleave": "in-progress"}


def read_encounter(res: Json, ctx: Context) -> Reading:
    r = Reading()
    r.take("id")
    r.fields["id"] = res.get("id")
    code = (res.get("class") or {}).get("code")
    if code not in c.FHIR_TO_ENCOUNTER_CLASS:
        message = f"不支持的就诊类别 unsupported encounter class {code!r} (AMB/IMP/EMER)"
        if ctx.strict:
            raise fail("class.code", message)
        raise Skip(message)
    r.take("class")
    r.fields["encounter_class"] = c.FHIR_TO_ENCOUNTER_CLASS[code]
    status = res.get("status")
    r.take("status")
    if status in _ENCOUNTER_STATUS:
        r.notes.append(("status", f"{status} 记为 recorded as {_ENCOUNTER_STATUS[status]}"))
        status = _ENCOUNTER_STATUS[status]
    r.fields["status"] = status
    department = _concept_text(res.get("serviceType"))
    if department:
        r.take("serviceType")
        r.fields["department"] = department[:200]
    elif ctx.strict:
        raise fail("serviceType", "就诊须注明科室 department (serviceType.text) is required")
    period = res.get("period") or {}
    start, end = period.get("start"), period.get("end")
    partial = [v for v in (start, end) if v and not _FULL_DATE.match(str(v))]
    if not start and ctx.strict:
        raise fail("period.start", "就诊须有开始时间 period.start is required")
    if period and not (partial and not ctx.strict):
        r.take("period")
        r.fields["admitted_at"] = start
        r.fields["discharged_at"] = end
    for index, loc in enumerate(res.get("location") or []):
        kind = (_coding(loc.get("physicalType"), c.LOCATION_TYPE) or {}).get("code")
        target = {"wa": "ward", "bd": "bed"}.get(kind or "")
        display = (loc.get("location") or {}).get("display")
        if target and display and target not in r.fields:
            r.take("location", index)
            r.fields[target] = display
    return r


def read_condition(res: Json, ctx: Context) -> Reading:
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
    _coded(res, r, ctx, system=ICD10_SYSTEM, target="icd10", field_name="icd10_code", label="ICD-10")
    onset = _when(res, "onsetDateTime", r, ctx)
    if onset:
        r.fields["onset_date"] = _date_part(onset)
    r.fields["recorded_at"] = _when(res, "recordedDate", r, ctx)
    _encounter_ref(res, r, ctx)
    return r


def read_observation(res: Json, ctx: Context) -> Reading:
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
    concept = res.get("code")
    loinc = _pick((concept or {}).get("coding"), lambda cd: cd.get("system") == LOINC_SYSTEM)
    r.take("code")
    r.fields["loinc_code"] = loinc[1].get("code") if loinc else None
    r.fields["codings"] = _codings_except(concept, loinc[0] if loinc else None)
    if ctx.strict and not _concept_text(concept):
        raise fail("code.text", "检查项目须有名称 Observation.code needs text or a display")
    name = _name(concept, r, "code")
    if not name:
        raise fail(
            "code", "Observation.code 须有 coding 或 text (R4 ele-1: an element has a value or children)"
        )
    r.fields["name"] = name
    _observation_value(res, r, ctx, category)
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
    when = None
    for key in ("effectiveDateTime", "issued"):
        when = _when(res, key, r, ctx)
        if when:
            break
    start = (res.get("effectivePeriod") or {}).get("start")
    if not when and start and (ctx.strict or _FULL_DATE.match(str(start))):
        r.take("effectivePeriod")
        when = start
    if not when and ctx.strict:
        raise fail("effectiveDateTime", "检查结果须有时间 effective time is required")
    r.fields["effective_at"] = when
    _encounter_ref(res, r, ctx)
    return r


def _observation_value(res: Json, r: Reading, ctx: Context, category: str) -> None:
    if "valueQuantity" in res:
        q = res["valueQuantity"]
        readable, unit = _soft_unit(q, "valueQuantity", ctx)
        if not readable or (unit is None and category == "laboratory" and not ctx.strict):
            r.warnings.append(
                ("valueQuantity", "单位不在本系统单位表，数值原样保留 unit not converted, kept verbatim")
            )
            return
        r.take("valueQuantity")
        r.fields["value"] = q.get("value")
        r.fields["unit"] = unit
    elif "valueString" in res:
        r.take("valueString")
        r.fields["value_text"] = str(res["valueString"])[:200]
    elif "valueCodeableConcept" in res:
        r.take("valueCodeableConcept")
        r.fields["value_text"] = _concept_text(res["valueCodeableConcept"]) or _first_code(
            res["valueCodeableConcept"]
        )
        r.notes.append(("valueCodeableConcept", "编码结果以文字保存 coded value kept as text"))
    elif ctx.strict:
        raise fail("value[x]", "需要 valueQuantity、valueString 或 valueCodeableConcept")


def read_procedure(res: Json, ctx: Context) -> Reading:
    r = Reading()
    r.take("id")
    r.fields["id"] = res.get("id")
    _coded(
        res, r, ctx, system=ICD9CM3_SYSTEM, target="icd9cm3", field_name="icd9cm3_code", label="ICD-9-CM-3"
    )
    r.take("status")
    r.fields["status"] = res.get("status") or "completed"
    when = _when(res, "performedDateTime", r, ctx)
    start = (res.get("performedPeriod") or {}).get("start")
    if not when and start and (ctx.strict or _FULL_DATE.match(str(start))):
        r.take("performedPeriod")
        when = start
    if not when and ctx.strict:
        raise fail("performedDateTime", "须有操作时间 performed time is required")
    r.fields["performed_at"] = when
    _encounter_ref(res, r, ctx)
    return r


def read_medication(res: Json, ctx: Context) -> Reading:
    r = Reading()
    r.take("id")
    r.fields["id"] = res.get("id")
    concept = res.get("medicationCodeableConcept")
    if concept is None:
        ref = res.get("medicationReference") or {}
        contained = ctx.contained.get(str(ref.get("reference") or "").removeprefix("#"))
        display = ref.get("display") or (
            _concept_text((contained or {}).get("code"))
            if str(ref.get("reference", "")).startswith("#")
            else None
        )
        if not display:
            message = "需要 medicationCodeableConcept 或带 display 的 medicationReference"
            if ctx.strict:
                raise fail("medication[x]", message)
            raise Skip(f"药品未命名，原样保留 the medication is not named here ({message})")
        r.take("medicationReference")
        r.fields["drug_name"] = str(display)[:200]
    else:
        r.take("medicationCodeableConcept")
        atc = _pick(concept.get("coding"), lambda cd: cd.get("system") == ATC_SYSTEM)
        r.fields["atc_code"] = atc[1].get("code") if atc else None
        r.fields["codings"] = _codings_except(concept, atc[0] if atc else None)
        r.fields["drug_name"] = _name(concept, r, "medicationCodeableConcept")
    r.take("status")
    r.fields["status"] = res.get("status")
    r.take("intent")
    dosages = res.get("dosageInstruction") or []
    dosage = dosages[0] if dosages else {}
    if dosages:
        r.take("dosageInstruction", 0)
    timing = dosage.get("timing") or {}
    bounds = (timing.get("repeat") or {}).get("boundsPeriod") or {}
    authored = _when(res, "authoredOn", r, ctx)
    start = bounds.get("start") or authored
    if not start and ctx.strict:
        raise fail(
            "authoredOn", "医嘱须有开始时间 authoredOn or timing.repeat.boundsPeriod.start is required"
        )
    r.fields["start"] = start
    r.fields["stop"] = bounds.get("end")
    frequency = (_coding(timing.get("code"), c.GTS_ABBREVIATION) or {}).get("code")
    r.fields["frequency"] = frequency
    r.fields["route"] = (_concept_text(dosage.get("route")) or "")[:40] or None
    rates = dosage.get("doseAndRate") or []
    if rates and rates[0].get("doseQuantity"):
        q = rates[0]["doseQuantity"]
        path = "dosageInstruction[0].doseAndRate[0].doseQuantity"
        readable, unit = _soft_unit(q, path, ctx)
        if readable and (unit is not None or ctx.strict):
            r.fields["dose"] = q.get("value")
            r.fields["dose_unit"] = unit
        else:
            r.warnings.append((path, "剂量单位无法识别，剂量未入病历（原始资源保留） dose unit not read"))
    _encounter_ref(res, r, ctx)
    return r


def read_allergy(res: Json, ctx: Context) -> Reading:
    r = Reading()
    r.take("id")
    r.fields["id"] = res.get("id")
    substance = _concept_text(res.get("code")) or ("" if ctx.strict else _first_code(res.get("code")))
    if not substance:
        if ctx.strict:
            raise fail("code", "过敏须注明过敏原 AllergyIntolerance.code is required")
        raise Skip("未注明过敏原，原样保留 no substance named (R4 code 0..1)")
    r.take("code")
    r.fields["substance"] = substance[:200]
    categories = res.get("category") or []
    if categories:
        r.take("category", 0)
        r.fields["category"] = categories[0]
    if "criticality" in res:
        r.take("criticality")
        r.fields["criticality"] = res["criticality"]
    recorded = _when(res, "recordedDate", r, ctx)
    if recorded:
        r.fields["recorded_date"] = _date_part(recorded)
    reactions = res.get("reaction") or []
    if reactions:
        r.take("reaction", 0)
        r.fields["reaction"] = _concept_text((reactions[0].get("manifestation") or [None])[0])
        r.fields["severity"] = reactions[0].get("severity")
    return r


def read_immunization(res: Json, ctx: Context) -> Reading:
    r = Reading()
    r.take("id")
    r.fields["id"] = res.get("id")
    vaccine = res.get("vaccineCode")
    name = _concept_text(vaccine) or ("" if ctx.strict else _first_code(vaccine))
    if not name:
        raise fail("vaccineCode", "须注明疫苗 vaccineCode needs text or a display")
    r.take("vaccineCode")
    r.fields["vaccine_name"] = name[:200]
    coding = _coding(vaccine, c.VACCINE_SYSTEM)
    r.fields["vaccine_code"] = coding.get("code") if coding else None
    r.take("status")
    r.fields["status"] = res.get("status")
    when = _when(res, "occurrenceDateTime", r, ctx)
    if not when:
        if ctx.strict:
            raise fail("occurrenceDateTime", "须有接种时间 occurrenceDateTime is required")
        raise Skip("接种时间为文字或部分日期，原样保留 occurrence is a string or a partial date")
    r.fields["occurred_at"] = when
    if "lotNumber" in res:
        r.take("lotNumber")
        r.fields["lot_number"] = res["lotNumber"]
    applied = res.get("protocolApplied") or []
    if applied and "doseNumberPositiveInt" in applied[0]:
        r.take("protocolApplied", 0)
        r.fields["dose_number"] = applied[0]["doseNumberPositiveInt"]
    return r


_NOTE_BY_LABEL = {t.value: t for t in NoteType}
# LOINC Document Ontology type codes for the note types we keep (LOINC 2.76, Document Ontology axis "type")
_NOTE_BY_LOINC = {
    "34117-2": NoteType.admission_record,  # History and physical note
    "11506-3": NoteType.progress_note,  # Progress note
    "18842-5": NoteType.discharge_record,  # Discharge summary
    "11488-4": NoteType.consultation_record,  # Consult note
    "11504-8": NoteType.operation_record,  # Surgical operation note
}


def read_composition(res: Json, ctx: Context) -> Reading:
    r = Reading()
    r.take("id")
    r.fields["id"] = res.get("id")
    kind = res.get("type") or {}
    coding = _coding(kind, c.NOTE_TYPE_SYSTEM)
    loinc = (_coding(kind, LOINC_SYSTEM) or {}).get("code")
    if coding and coding.get("code") in NoteType.__members__:
        note_type = NoteType[coding["code"]]
    elif _concept_text(kind) in _NOTE_BY_LABEL:
        note_type = _NOTE_BY_LABEL[str(_concept_text(kind))]
    elif not ctx.strict and loinc in _NOTE_BY_LOINC:
        note_type = _NOTE_BY_LOINC[str(loinc)]
    else:
        message = f"未知文书类型 unknown note type; one of {list(_NOTE_BY_LABEL)}"
        if ctx.strict:
            raise fail("type", message)
        raise Skip(message)
    r.take("type")
    r.fields["note_type"] = note_type
    r.take("status")
    r.fields["written_at"] = _when(res, "date", r, ctx)
    authors = res.get("author") or []
    if authors and authors[0].get("display"):
        r.take("author", 0)
        r.fields["author"] = str(authors[0]["display"])[:200]
    elif ctx.strict:
        raise fail("author[0].display", "文书须有作者姓名 author display is required")
    r.take("title")
    r.fields["title"] = res.get("title")
    sections = []
    for index, section in enumerate(res.get("section") or []):
        div = (section.get("text") or {}).get("div")
        if div is None:
            if ctx.strict:
                raise fail(f"section[{index}].text.div", "章节须有文本 section narrative is required")
            continue  # a section of entries or sub-sections only (R4 cmp-1): kept verbatim
        text, flattened = div_to_text(div)
        if flattened:
            r.notes.append((f"section[{index}].text.div", "XHTML 标记已转为纯文本 markup flattened to text"))
        r.take("section", index)
        sections.append({"title": section.get("title"), "text": text})
    if not sections and not ctx.strict:
        raise Skip("文书无文字章节，原样保留 no narrative section")
    r.fields["sections"] = sections
    _encounter_ref(res, r, ctx)
    return r
