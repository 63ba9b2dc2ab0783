"""FHIR R4 Bundle → patient charts, all or nothing.

Order of checks: the Bundle's declared FHIR version; every resource against the R4B models of
fhir.resources (same as R4 for the types we map; unknown elements are errors that name the field);
references; our record rules (ID check digits, units, impossible dates). Any failure raises before
anything is written. Elements we do not model are kept in ``fhir_extra`` and listed in the report;
values we normalise or cannot keep are reported too — with ``strict`` they are errors instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from fhir.resources.R4B import get_fhir_model_class
from pydantic import BaseModel, Field, ValidationError

from medfusion.errors import InvalidFhir, MedFusionError, UnsupportedFhirVersion
from medfusion.interop.fhir import constants as c
from medfusion.interop.fhir import export
from medfusion.interop.fhir import readers as rd
from medfusion.record.models import CHILD_MODELS, Patient, PatientChart

Json = dict[str, Any]


class ImportIssue(BaseModel):
    path: str
    kind: Literal["kept", "changed", "dropped", "skipped"]
    message: str


class ImportResult(BaseModel):
    charts: list[PatientChart]
    issues: list[ImportIssue]
    # Patient ids this import derived because the resource had none (matched by identifiers when stored)
    generated_ids: list[str] = Field(default_factory=list)
    # filled in by the store once the charts are written: patient ids by what happened to them
    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    resources_added: int = 0
    resources_unchanged: int = 0

    @property
    def patient_ids(self) -> list[str]:
        return [chart.patient.id for chart in self.charts]


_READERS: dict[str, tuple[str, Callable[..., rd.Reading]]] = {
    "Encounter": ("encounters", rd.read_encounter),
    "Condition": ("conditions", rd.read_condition),
    "Observation": ("observations", rd.read_observation),
    "Procedure": ("procedures", rd.read_procedure),
    "MedicationRequest": ("medications", rd.read_medication),
    "AllergyIntolerance": ("allergies", rd.read_allergy),
    "Immunization": ("immunizations", rd.read_immunization),
    "Composition": ("notes", rd.read_composition),
}
_EXPORTERS: dict[str, Callable[..., Json]] = {
    "Encounter": export.encounter_resource,
    "Condition": export.condition_resource,
    "Observation": export.observation_resource,
    "Procedure": export.procedure_resource,
    "MedicationRequest": export.medication_resource,
    "AllergyIntolerance": export.allergy_resource,
    "Immunization": export.immunization_resource,
    "Composition": export.composition_resource,
}
_SUBJECT_KEY = {"AllergyIntolerance": "patient", "Immunization": "patient"}


def _check_version(bundle: Json) -> None:
    for tag in (bundle.get("meta") or {}).get("tag") or []:
        if tag.get("system") == c.FHIR_VERSION_SYSTEM:
            version = str(tag.get("code", ""))
            if not version.startswith(c.ACCEPTED_VERSIONS):
                raise UnsupportedFhirVersion.for_field(
                    "meta.tag",
                    f"只支持 FHIR R4 (4.0.x) only FHIR R4 is supported, got {version!r}",
                    code="unsupported_fhir_version",
                )


def _validate_fhir(resource: Json, path: str) -> None:
    rtype = resource.get("resourceType")
    try:
        model = get_fhir_model_class(str(rtype))
    except (KeyError, ValueError):
        raise rd.fail(f"{path}.resourceType", f"未知资源类型 unknown resourceType {rtype!r}") from None
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        raise _fhir_error(exc, path, str(rtype)) from None


def _fhir_error(exc: ValidationError, path: str, rtype: str) -> InvalidFhir:
    details = [
        {"field": ".".join([p for p in (path, *(str(p) for p in err["loc"])) if p]), "message": err["msg"]}
        for err in exc.errors()[:20]
    ]
    first = details[0] if details else {"field": path, "message": "invalid"}
    return InvalidFhir(f"FHIR {rtype} 无效 invalid: {first['field']}: {first['message']}", details=details)


def _validate_envelope(bundle: Json) -> list[Any]:
    """The Bundle itself (meta, type, entry shapes, fullUrls) against R4B, before any resource is read."""
    entries = bundle.get("entry")
    shell = {**bundle}
    if isinstance(entries, list):
        shell["entry"] = [
            {k: v for k, v in entry.items() if k != "resource"} if isinstance(entry, dict) else entry
            for entry in entries
        ]
    try:
        get_fhir_model_class("Bundle").model_validate(shell)
    except ValidationError as exc:
        raise _fhir_error(exc, "", "Bundle") from None
    return entries if isinstance(entries, list) else []


def _model_error(exc: ValidationError, path: str) -> InvalidFhir:
    details = [
        {"field": ".".join([path, *(str(p) for p in err["loc"])]).rstrip("."), "message": err["msg"]}
        for err in exc.errors()[:20]
    ]
    first = details[0]
    return InvalidFhir(f"{first['field']}: {first['message']}", details=details)


def _equal(a: Any, b: Any) -> bool:
    if a == b:
        return True
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return float(a) == float(b)
    if isinstance(a, str) and isinstance(b, str):
        try:
            return datetime.fromisoformat(a.replace("Z", "+00:00")) == datetime.fromisoformat(
                b.replace("Z", "+00:00")
            )
        except ValueError:
            return False
    return False


def lost_paths(original: Any, ours: Any, path: str) -> list[ImportIssue]:
    """Where ``original`` has something ``ours`` (the re-export) does not reproduce."""
    if _equal(original, ours):
        return []
    if isinstance(original, dict) and isinstance(ours, dict):
        issues: list[ImportIssue] = []
        for key, value in original.items():
            sub = f"{path}.{key}"
            if key not in ours:
                issues.append(ImportIssue(path=sub, kind="dropped", message="未能保存 not kept"))
            else:
                issues.extend(lost_paths(value, ours[key], sub))
        return issues
    if isinstance(original, list) and isinstance(ours, list):
        issues = []
        for index, item in enumerate(original):
            if any(_equal(item, candidate) for candidate in ours):
                continue
            candidate = ours[index] if index < len(ours) else None
            if candidate is None:
                issues.append(
                    ImportIssue(path=f"{path}[{index}]", kind="dropped", message="未能保存 not kept")
                )
            else:
                issues.extend(lost_paths(item, candidate, f"{path}[{index}]"))
        return issues
    return [ImportIssue(path=path, kind="changed", message=f"{original!r} → {ours!r}")]


def _extra(resource: Json, reading: rd.Reading) -> Json:
    extra: Json = {}
    for key, value in resource.items():
        if key == "resourceType":
            continue
        if key not in reading.consumed:
            extra[key] = value
            continue
        used = reading.consumed[key]
        if used is not None and isinstance(value, list):
            rest = [item for index, item in enumerate(value) if index not in used]
            if rest:
                extra[key] = rest
    return extra


class _Index:
    """fullUrl and Type/id lookups so references of either form resolve inside the Bundle."""

    def __init__(self, entries: list[tuple[str, Json, str | None]]) -> None:
        self.by_url: dict[str, tuple[str, str]] = {}
        self.by_type_id: set[tuple[str, str]] = set()
        for _path, res, url in entries:
            key = (str(res["resourceType"]), str(res["id"]))
            self.by_type_id.add(key)
            if url:
                self.by_url[url] = key

    def resolve(self, reference: str, expected: str, path: str) -> str:
        if reference in self.by_url:
            rtype, rid = self.by_url[reference]
        elif "/" in reference:
            rtype, rid = reference.rsplit("/", 2)[-2:]
        else:
            raise rd.fail(path, f"无法解析的引用 unresolvable reference {reference!r}")
        if rtype != expected or (rtype, rid) not in self.by_type_id:
            raise rd.fail(
                path, f"引用的 {expected} 不在 Bundle 中 reference {reference!r} not in this Bundle"
            )
        return rid


def _prune(value: Any) -> Any:
    """Drop JSON nulls (FHIR JSON has none; fhir.resources reads them as absent), so readers see one form."""
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune(v) for v in value if v is not None]
    return value


def _ensure_id(res: Json, url: str | None, index: int) -> Json:
    if res.get("id"):
        return res
    seed = url or f"entry-{index}"
    digest = hashlib.sha256(seed.encode()).hexdigest()[:16]
    return {**res, "id": f"{str(res.get('resourceType', 'R'))[:3].lower()}-{digest}"}


def bundle_to_charts(bundle: Any, *, strict: bool = False) -> ImportResult:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise rd.fail("resourceType", "须为 FHIR Bundle (resourceType 'Bundle')")
    raw_entries = _validate_envelope(bundle)
    _check_version(bundle)
    entries: list[tuple[str, Json, str | None]] = []
    for index, entry in enumerate(raw_entries):
        path = f"entry[{index}].resource"
        res = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(res, dict):
            raise rd.fail(path, "缺少 resource missing resource")
        _validate_fhir(res, path)
        entries.append((path, _ensure_id(_prune(res), entry.get("fullUrl"), index), entry.get("fullUrl")))
    index_ = _Index(entries)
    issues: list[ImportIssue] = []
    patients: dict[str, Patient] = {}
    children: dict[str, dict[str, list[Any]]] = {}
    generated: list[str] = []
    for (path, res, _url), raw in zip(entries, raw_entries, strict=True):
        if res["resourceType"] != "Patient":
            continue
        if not raw["resource"].get("id"):
            generated.append(str(res["id"]))
        patient = _read_one(res, path, Patient, lambda r: rd.read_patient(r), export.patient_resource, issues)
        if patient.id in patients:  # a second Patient with the same id would silently replace the first
            raise rd.fail(f"{path}.id", f"Bundle 中患者 id 重复 Patient id {patient.id!r} repeated")
        patients[patient.id] = patient
        children[patient.id] = {kind: [] for kind in CHILD_MODELS}
    if not patients:
        raise rd.fail("entry", "Bundle 中没有 Patient 资源 no Patient resource in the Bundle")
    for path, res, _url in entries:
        rtype = res["resourceType"]
        if rtype == "Patient":
            continue
        if rtype not in _READERS:
            issues.append(
                ImportIssue(
                    path=path, kind="skipped", message=f"{rtype} 不属于病历模型 not part of the record"
                )
            )
            continue
        kind, reader = _READERS[rtype]
        subject_key = _SUBJECT_KEY.get(rtype, "subject")
        ref = (res.get(subject_key) or {}).get("reference")
        if not ref:
            raise rd.fail(f"{path}.{subject_key}", "须引用患者 a patient reference is required")
        pid = index_.resolve(ref, "Patient", f"{path}.{subject_key}.reference")

        def resolve(reference: str, _path: str = path) -> str:
            return index_.resolve(reference, "Encounter", f"{_path}.encounter.reference")

        def read(r: Json, _reader: Callable[..., rd.Reading] = reader, _key: str = subject_key) -> rd.Reading:
            reading = _reader(r, resolve)
            reading.take(_key)
            return reading

        def exporter(model: Any, _rtype: str = rtype, _pid: str = pid) -> Json:
            return _EXPORTERS[_rtype](model, _pid)

        try:
            item = _read_one(res, path, CHILD_MODELS[kind], read, exporter, issues)
        except rd.Skip as skip:
            issues.append(ImportIssue(path=path, kind="skipped", message=str(skip)))
            continue
        children[pid][kind].append(item)
    charts = []
    for pid, patient in patients.items():
        try:
            charts.append(PatientChart(patient=patient, **children[pid]))
        except ValidationError as exc:
            raise _model_error(exc, f"Patient/{pid}") from None
    if strict:
        lossy = [i for i in issues if i.kind in ("changed", "dropped", "skipped")]
        if lossy:
            raise InvalidFhir(
                f"严格模式：{len(lossy)} 处内容无法原样保存 strict import: "
                f"{lossy[0].path}: {lossy[0].message}",
                details=[i.model_dump() for i in lossy[:50]],
            )
    return ImportResult(charts=charts, issues=issues, generated_ids=generated)


def _read_one(
    res: Json,
    path: str,
    model: type[Any],
    read: Callable[[Json], rd.Reading],
    exporter: Callable[[Any], Json],
    issues: list[ImportIssue],
) -> Any:
    try:
        reading = read(res)
    except MedFusionError as exc:
        if isinstance(exc.details, list) and exc.details and "field" in exc.details[0]:
            field = f"{path}.{exc.details[0]['field']}"
            raise InvalidFhir(
                f"{field}: {exc.details[0]['message']}",
                details=[{**exc.details[0], "field": field}],
                code=exc.code,
            ) from None
        raise
    extra = _extra(res, reading)
    try:
        item = model.model_validate({**reading.fields, "fhir_extra": extra})
    except ValidationError as exc:
        raise _model_error(exc, path) from None
    for key in extra:
        issues.append(
            ImportIssue(path=f"{path}.{key}", kind="kept", message="未建模，原样保留 not modelled, kept")
        )
    for sub, message in reading.notes:
        issues.append(ImportIssue(path=f"{path}.{sub}", kind="changed", message=message))
    issues.extend(lost_paths(res, exporter(item), path))
    return item
