"""The patient record, FHIR-aligned (R4 4.0.1), validated at the boundary.

One aggregate: :class:`PatientChart` holds a :class:`Patient` and everything recorded about them. Child
resources do not repeat the patient id — the chart owns them — and refer to encounters by id. Every model
keeps ``fhir_extra``: FHIR elements we do not model, carried through import and export so nothing a
hospital sends us is silently dropped.

Cardinality follows FHIR R4 (4.0.1): what R4 allows to be absent (``Patient.name``, ``Encounter.serviceType``
and ``period``, ``Condition.code``, ``Observation.effective[x]`` and ``value[x]``, ``Procedure.performed[x]``,
``MedicationRequest.authoredOn``, ``Composition.author.display``) may be ``None`` here — unknown, never
invented. A diagnosis or procedure without an ICD-10 / ICD-9-CM-3 code keeps every coding it came with
(``codings``) and says so in ``coding_status`` (``unmapped``).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, computed_field, model_validator

from medfusion.record.clinical_time import aware, today_local
from medfusion.record.codes import check_atc, check_icd9cm3, check_icd10, check_loinc
from medfusion.record.id_card import IdNumberError, parse_id_number
from medfusion.record.units import check_unit

_EARLIEST_BIRTH = date(1880, 1, 1)
_MOBILE = re.compile(r"^(\+?86)?1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}(-\d{1,6})?$")


def _resource_id(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", value):
        raise ValueError("id 只能包含字母、数字、'-'、'.'，最长64位 (FHIR id: [A-Za-z0-9-.]{1,64})")
    return value


def _clinical_time(value: datetime) -> datetime:
    value = aware(value)
    if value.date() > date(2200, 1, 1) or value.date() < _EARLIEST_BIRTH:
        raise ValueError("时间不在合理范围 (time out of range)")
    return value


def _id_number(value: str) -> str:
    try:
        return parse_id_number(value).number
    except IdNumberError as exc:
        raise ValueError(str(exc)) from None


def is_chinese_phone(value: str) -> bool:
    """A Chinese mobile or landline number in the shapes we write (the ``medfusion-strict`` rule)."""
    compact = re.sub(r"[\s()（）]", "", value)
    return bool(_MOBILE.match(compact) or _LANDLINE.match(compact))


def _phone(value: str) -> str:
    """Chinese numbers are compacted (``138 0013 8000`` → ``13800138000``); any other number (FHIR
    ``ContactPoint.value`` is a free string) is kept as given — the importer warns where it cannot be read."""
    if not value:
        raise ValueError("电话号码为空 (empty phone number)")
    if is_chinese_phone(value):
        return re.sub(r"[\s()（）]", "", value)
    return value


ResourceId = Annotated[str, AfterValidator(_resource_id)]
ClinicalTime = Annotated[datetime, AfterValidator(_clinical_time)]
IdNumber = Annotated[str, AfterValidator(_id_number)]
Phone = Annotated[str, AfterValidator(_phone), Field(max_length=64)]
Unit = Annotated[str, AfterValidator(check_unit)]
Icd10Code = Annotated[str, AfterValidator(check_icd10)]
Icd9Cm3Code = Annotated[str, AfterValidator(check_icd9cm3)]
AtcCode = Annotated[str, AfterValidator(check_atc)]
LoincCode = Annotated[str, AfterValidator(check_loinc)]
Text = Annotated[str, Field(min_length=1, max_length=200)]


class CodingStatus(StrEnum):
    """Whether a diagnosis / procedure carries the code system the record is kept in (ICD-10 国家临床版2.0,
    ICD-9-CM-3): from the source (``coded``), translated by us from another coding (``mapped``), or not
    (``unmapped`` — its own codings are kept in ``codings``)."""

    coded = "coded"
    mapped = "mapped"
    unmapped = "unmapped"


class Coding(BaseModel):
    """A FHIR ``Coding`` kept as sent (SNOMED CT, LOINC, RxNorm, a hospital's local code …)."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    system: str | None = Field(default=None, max_length=500)
    version: str | None = Field(default=None, max_length=100)
    code: str | None = Field(default=None, max_length=200)
    display: str | None = Field(default=None, max_length=500)


class RecordModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_assignment=True)

    fhir_extra: dict[str, Any] = Field(
        default_factory=dict, description="FHIR elements not modelled here, kept verbatim for export."
    )


class Sex(StrEnum):
    male = "male"
    female = "female"
    other = "other"
    unknown = "unknown"


SEX_LABELS = {Sex.male: "男", Sex.female: "女", Sex.other: "其他", Sex.unknown: "未知"}


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    province: str | None = Field(default=None, max_length=60, examples=["上海市"])
    city: str | None = Field(default=None, max_length=60, examples=["上海市"])
    district: str | None = Field(default=None, max_length=60, examples=["静安区"])
    line: str | None = Field(default=None, max_length=120, examples=["南京西路1号3弄201室"])
    # R4 Address.postalCode is a free string (a US ZIP is 5 or 9 digits); ours are 6 digits
    postal_code: str | None = Field(default=None, max_length=20)
    country: str | None = Field(default=None, max_length=60)

    @property
    def text(self) -> str:
        parts = [self.province, self.city if self.city != self.province else None, self.district, self.line]
        return "".join(p for p in parts if p)


class Patient(RecordModel):
    """Demographics (FHIR Patient). ``id_number`` is a 居民身份证号 checked by GB 11643-1999 (read only from
    an identifier whose system says it is one). ``name`` is ``None`` when the source has none (R4 0..*)."""

    id: ResourceId
    name: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    sex: Sex
    birth_date: date | None = None  # R4 0..1: unknown when the source has none (never guessed)
    id_number: IdNumber | None = None
    phone: Phone | None = None
    address: Address | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.birth_date is not None and not _EARLIEST_BIRTH <= self.birth_date <= today_local():
            raise ValueError("birth_date: 出生日期不可能 (impossible birth date)")
        if self.id_number:
            parsed = parse_id_number(self.id_number)
            if self.birth_date is not None and parsed.birth_date != self.birth_date:
                raise ValueError("id_number: 身份证号中的出生日期与 birth_date 不一致 (birth date mismatch)")
            if self.sex in (Sex.male, Sex.female) and parsed.sex != self.sex.value:
                raise ValueError("id_number: 身份证号顺序码的性别与 sex 不一致 (sex mismatch)")
        return self


class EncounterClass(StrEnum):
    outpatient = "outpatient"
    inpatient = "inpatient"
    emergency = "emergency"


class EncounterStatus(StrEnum):
    planned = "planned"
    in_progress = "in-progress"
    finished = "finished"
    cancelled = "cancelled"
    entered_in_error = "entered-in-error"
    unknown = "unknown"


class Encounter(RecordModel):
    id: ResourceId
    encounter_class: EncounterClass
    status: EncounterStatus = EncounterStatus.finished
    department: Text | None = None  # R4 serviceType 0..1
    ward: str | None = Field(default=None, max_length=60)
    bed: str | None = Field(default=None, max_length=20)
    admitted_at: ClinicalTime | None = None  # R4 period 0..1: unknown, not invented
    discharged_at: ClinicalTime | None = None

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.discharged_at and self.admitted_at and self.discharged_at < self.admitted_at:
            raise ValueError("discharged_at: 出院/结束时间早于入院/开始时间 (ends before it starts)")
        return self


class DiagnosisRole(StrEnum):
    primary = "primary"
    secondary = "secondary"


class ConditionStatus(StrEnum):
    active = "active"
    recurrence = "recurrence"
    relapse = "relapse"
    inactive = "inactive"
    remission = "remission"
    resolved = "resolved"


class Condition(RecordModel):
    """A diagnosis coded in ICD-10 (国家临床版2.0) with its name — or, when the source sent another code
    system (SNOMED CT, local codes) that no mapping translates, ``icd10_code`` ``None``, ``coding_status``
    ``unmapped`` and the source's codings in ``codings``."""

    id: ResourceId
    encounter_id: ResourceId | None = None
    icd10_code: Icd10Code | None = None
    name: Text | None = None  # R4 Condition.code 0..1
    role: DiagnosisRole = DiagnosisRole.secondary
    clinical_status: ConditionStatus = ConditionStatus.active
    onset_date: date | None = None
    recorded_at: ClinicalTime | None = None
    codings: list[Coding] = Field(default_factory=list, description="the source's other codings, as sent")
    coding_status: CodingStatus = CodingStatus.coded

    @model_validator(mode="after")
    def _status(self) -> Self:
        _coding_status(self, self.icd10_code)
        return self

    @property
    def label(self) -> str:
        """What to call it on a page: its name, else its code, else the source's first coding."""
        return self.name or self.icd10_code or _coding_label(self.codings)

    @property
    def code_label(self) -> str:
        """The ICD-10 code, or the source's coding marked 未映射 (unmapped)."""
        return self.icd10_code or f"{_coding_label(self.codings)}（未映射 unmapped）"


class ObservationCategory(StrEnum):
    vital_signs = "vital-signs"
    laboratory = "laboratory"


class AbnormalFlag(StrEnum):
    normal = "N"
    high = "H"
    low = "L"
    critical_high = "HH"
    critical_low = "LL"
    abnormal = "A"


class Observation(RecordModel):
    """A vital sign or lab result. ``flag`` is derived from the reference range when not given."""

    id: ResourceId
    encounter_id: ResourceId | None = None
    category: ObservationCategory
    loinc_code: LoincCode | None = None
    name: Text
    value: float | None = None
    value_text: str | None = Field(default=None, max_length=200)
    unit: Unit | None = None
    reference_low: float | None = None
    reference_high: float | None = None
    flag: AbnormalFlag | None = None
    effective_at: ClinicalTime | None = None  # R4 effective[x] 0..1: unknown, not invented
    codings: list[Coding] = Field(default_factory=list, description="codings besides LOINC, as sent")

    @model_validator(mode="after")
    def _value_and_flag(self) -> Self:
        # R4 value[x] is 0..1 (a panel's values sit in component, an absent one in dataAbsentReason)
        if self.value is not None and self.value_text is not None:
            raise ValueError("value: 数值结果与文字结果最多给出一个 (at most one of value, value_text)")
        if self.value is not None and self.unit is None and self.category is ObservationCategory.laboratory:
            raise ValueError("unit: 数值型检验结果需要单位 (numeric lab result needs a unit)")
        low, high = self.reference_low, self.reference_high
        if low is not None and high is not None and low > high:
            raise ValueError("reference_low: 参考下限大于上限 (reference range inverted)")
        if self.flag is None and self.value is not None and (low is not None or high is not None):
            flag = AbnormalFlag.normal
            if high is not None and self.value > high:
                flag = AbnormalFlag.high
            elif low is not None and self.value < low:
                flag = AbnormalFlag.low
            object.__setattr__(self, "flag", flag)
        return self

    @property
    def is_abnormal(self) -> bool:
        return self.flag not in (None, AbnormalFlag.normal)


class Procedure(RecordModel):
    """An operation or procedure coded in ICD-9-CM-3 — or ``unmapped`` with the source's codings kept."""

    id: ResourceId
    encounter_id: ResourceId | None = None
    icd9cm3_code: Icd9Cm3Code | None = None
    name: Text | None = None  # R4 Procedure.code 0..1
    performed_at: ClinicalTime | None = None  # R4 performed[x] 0..1
    status: str = Field(
        default="completed",
        pattern=r"^(preparation|in-progress|not-done|on-hold|stopped|completed|entered-in-error|unknown)$",
    )
    codings: list[Coding] = Field(default_factory=list, description="the source's other codings, as sent")
    coding_status: CodingStatus = CodingStatus.coded

    @model_validator(mode="after")
    def _status(self) -> Self:
        _coding_status(self, self.icd9cm3_code)
        return self

    @property
    def label(self) -> str:
        return self.name or self.icd9cm3_code or _coding_label(self.codings)


def _coding_label(codings: list[Coding]) -> str:
    for coding in codings:
        if coding.code:
            return f"{coding.system or ''}|{coding.code}".lstrip("|")
    return "无编码 uncoded"


def _coding_status(item: Condition | Procedure, code: str | None) -> None:
    if code is None and item.coding_status is not CodingStatus.unmapped:
        object.__setattr__(item, "coding_status", CodingStatus.unmapped)
    elif code is not None and item.coding_status is CodingStatus.unmapped:
        object.__setattr__(item, "coding_status", CodingStatus.coded)


class MedicationStatus(StrEnum):
    active = "active"
    completed = "completed"
    stopped = "stopped"
    on_hold = "on-hold"
    cancelled = "cancelled"
    entered_in_error = "entered-in-error"
    draft = "draft"
    unknown = "unknown"


class MedicationRequest(RecordModel):
    """A prescription/order. ``frequency`` uses the HL7 v3 GTSAbbreviation codes (QD, BID, TID, …)."""

    id: ResourceId
    encounter_id: ResourceId | None = None
    drug_name: Text
    atc_code: AtcCode | None = None
    dose: float | None = Field(default=None, gt=0)
    dose_unit: Unit | None = None
    route: str | None = Field(default=None, max_length=40, examples=["口服", "静脉滴注"])
    frequency: str | None = Field(
        default=None, pattern=r"^(QD|BID|TID|QID|QOD|QN|QM|Q\d{1,2}H|PRN|STAT|QW|BIW|TIW)$"
    )
    status: MedicationStatus = MedicationStatus.active
    start: ClinicalTime | None = None  # R4 authoredOn 0..1: unknown, not invented
    stop: ClinicalTime | None = None
    codings: list[Coding] = Field(default_factory=list, description="codings besides ATC (RxNorm …), as sent")

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if (self.dose is None) != (self.dose_unit is None):
            raise ValueError("dose_unit: 剂量与单位须同时给出 (dose and dose_unit go together)")
        if self.stop and self.start and self.stop < self.start:
            raise ValueError("stop: 停止时间早于开始时间 (stop before start)")
        return self


class AllergyCategory(StrEnum):
    medication = "medication"
    food = "food"
    environment = "environment"
    biologic = "biologic"


class AllergyIntolerance(RecordModel):
    id: ResourceId
    substance: Text
    category: AllergyCategory = AllergyCategory.medication
    reaction: str | None = Field(default=None, max_length=200)
    severity: str | None = Field(default=None, pattern=r"^(mild|moderate|severe)$")
    criticality: str | None = Field(default=None, pattern=r"^(low|high|unable-to-assess)$")
    recorded_date: date | None = None

    @model_validator(mode="after")
    def _severity_needs_reaction(self) -> Self:
        if self.severity and not self.reaction:
            raise ValueError("reaction: 记录严重程度时须写明反应 (severity describes a reaction)")
        return self


class Immunization(RecordModel):
    id: ResourceId
    vaccine_name: Text
    vaccine_code: str | None = Field(default=None, max_length=40)
    occurred_at: ClinicalTime
    dose_number: int | None = Field(default=None, ge=1, le=20)
    lot_number: str | None = Field(default=None, max_length=40)
    status: str = Field(default="completed", pattern=r"^(completed|entered-in-error|not-done)$")


class NoteType(StrEnum):
    admission_record = "入院记录"
    first_progress_note = "首次病程记录"
    progress_note = "日常病程记录"
    discharge_record = "出院记录"
    outpatient_record = "门诊病历"
    operation_record = "手术记录"
    consultation_record = "会诊记录"


class NoteSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=60)
    text: str = Field(max_length=200_000)


class ClinicalNote(RecordModel):
    """A clinical document (病历文书). Its ``text`` is its sections joined, each as ``标题：内容``."""

    id: ResourceId
    encounter_id: ResourceId | None = None
    note_type: NoteType
    title: str | None = Field(default=None, max_length=120, description="Defaults to the note type's name.")
    author: Text | None = None  # R4 Composition.author is a Reference; its display is 0..1
    written_at: ClinicalTime
    sections: list[NoteSection] = Field(min_length=1)

    @model_validator(mode="after")
    def _default_title(self) -> Self:
        if not self.title:
            object.__setattr__(self, "title", self.note_type.value)
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def text(self) -> str:
        return "\n".join(f"{s.title}：{s.text}" if s.title else s.text for s in self.sections)


class PatientChart(BaseModel):
    """The aggregate stored and exchanged as one unit (one FHIR Bundle per patient)."""

    model_config = ConfigDict(extra="forbid")

    patient: Patient
    encounters: list[Encounter] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    observations: list[Observation] = Field(default_factory=list)
    procedures: list[Procedure] = Field(default_factory=list)
    medications: list[MedicationRequest] = Field(default_factory=list)
    allergies: list[AllergyIntolerance] = Field(default_factory=list)
    immunizations: list[Immunization] = Field(default_factory=list)
    notes: list[ClinicalNote] = Field(default_factory=list)

    def children(self) -> dict[str, list[Any]]:
        return {name: getattr(self, name) for name in CHILD_KINDS}

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, data: Any) -> Any:
        # ``ClinicalNote.text`` is computed: accept a chart we serialised ourselves.
        if isinstance(data, dict) and isinstance(data.get("notes"), list):
            data = dict(data)
            data["notes"] = [
                {k: v for k, v in n.items() if k != "text"} if isinstance(n, dict) else n
                for n in data["notes"]
            ]
        return data

    @model_validator(mode="after")
    def _references(self) -> Self:
        birth = self.patient.birth_date
        encounter_ids = {e.id for e in self.encounters}
        for kind, items in self.children().items():
            seen: set[str] = set()
            for index, item in enumerate(items):
                if item.id in seen:
                    raise ValueError(f"{kind}.{index}.id: 重复的 id (duplicate id {item.id!r})")
                seen.add(item.id)
                ref = getattr(item, "encounter_id", None)
                if ref is not None and ref not in encounter_ids:
                    raise ValueError(
                        f"{kind}.{index}.encounter_id: 引用了不存在的就诊 (unknown encounter {ref!r})"
                    )
                for attr in _TIME_FIELDS.get(kind, ()):
                    value = getattr(item, attr)
                    when = value.date() if isinstance(value, datetime) else value
                    if when is not None and birth is not None and when < birth:
                        raise ValueError(f"{kind}.{index}.{attr}: 早于出生日期 (before the patient's birth)")
        return self


CHILD_KINDS: tuple[str, ...] = (
    "encounters",
    "conditions",
    "observations",
    "procedures",
    "medications",
    "allergies",
    "immunizations",
    "notes",
)
_TIME_FIELDS: dict[str, tuple[str, ...]] = {
    "encounters": ("admitted_at",),
    "conditions": ("onset_date",),
    "observations": ("effective_at",),
    "procedures": ("performed_at",),
    "medications": ("start",),
    "immunizations": ("occurred_at",),
    "notes": ("written_at",),
}
CHILD_MODELS: dict[str, type[RecordModel]] = {
    "encounters": Encounter,
    "conditions": Condition,
    "observations": Observation,
    "procedures": Procedure,
    "medications": MedicationRequest,
    "allergies": AllergyIntolerance,
    "immunizations": Immunization,
    "notes": ClinicalNote,
}
