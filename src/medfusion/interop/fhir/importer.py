"""FHIR R4 Bundle → patient charts, all or nothing.

Order of checks: the Bundle's declared FHIR version; every resource against the R4B models of
fhir.resources (same as R4 for the types we map; unknown elements are errors that name the field);
fullUrls unique; ``urn:uuid`` references resolve inside the Bundle; then our record rules. Profile ``r4``
(default) accepts what R4 accepts: absent elements read as unknown, other code systems are kept and mapped
or marked ``unmapped``, and what the record cannot hold is kept raw (``ImportResult.raw``) and reported.
Profile ``medfusion-strict`` applies our own feeds' rules as errors (the behaviour before issue 15).
Elements we do not model are kept in ``fhir_extra``; with ``strict`` (lossless) anything changed, dropped
or skipped is an error.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from fhir.resources.R4B import get_fhir_model_class
from pydantic import BaseModel, Field, ValidationError

from medfusion.errors import InvalidFhir, MedFusionError, UnsupportedFhirVersion
from medfusion.interop.fhir import constants as c
from medfusion.interop.fhir import export
from medfusion.interop.fhir import readers as rd
from medfusion.interop.fhir.code_maps import CodeMapper, TableMapper
from medfusion.interop.fhir.raw import RawResource, model_hash
from medfusion.record.models import CHILD_MODELS, Patient, PatientChart

Json = dict[str, Any]


class Profile(StrEnum):
    """``r4``: what FHIR R4 accepts, we accept (the default). ``medfusion-strict``: our own feeds' rules
    on top (patient name, department, ICD-10 / ICD-9-CM-3 codings, times, a Chinese phone number, every
    reference inside the Bundle …) — the importer's behaviour before issue 15."""

    r4 = "r4"
    medfusion_strict = "medfusion-strict"


IssueKind = Literal["kept", "changed", "dropped", "skipped", "mapped", "unmapped", "warning", "refused"]


class ImportIssue(BaseModel):
    path: str
    kind: IssueKind
    message: str


class ImportResult(BaseModel):
    charts: list[PatientChart]
    issues: list[ImportIssue]
    profile: Profile = Profile.r4
    # Patient ids this import derived because the resource had none (matched by identifiers when stored)
    generated_ids: list[str] = Field(default_factory=list)
    # every resource of the Bundle as received (ids filled in), for the store's fhir_raw_resources
    raw: list[RawResource] = Field(default_factory=list, exclude=True, repr=False)
    # filled in by the store once the charts are written: patient ids by what happened to them
    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    resources_added: int = 0
    resources_unchanged: int = 0
    raw_added: int = 0
    raw_unchanged: int = 0

    @property
    def patient_ids(self) -> list[str]:
        return [chart.patient.id for chart in self.charts]

    def counts(self) -> dict[str, int]:
        """Issues by kind (``unmapped``: diagnoses / procedures kept without ICD-10 / ICD-9-CM-3)."""
        found: dict[str, int] = {}
        for issue in self.issues:
            found[issue.kind] = found.get(issue.kind, 0) + 1
        return found

    def raw_only(self) -> dict[str, int]:
        """Resources the record does not hold (kept raw only), by resource type."""
        found: dict[str, int] = {}
        for res in self.raw:
            if res.model_hash is None:
                found[res.resource_type] = found.get(res.resource_type, 0) + 1
        return found

    def summary(self) -> dict[str, Any]:
        """What ``fhir import --json`` prints."""
        unmapped: dict[str, int] = {"conditions": 0, "procedures": 0}
        for chart in self.charts:
            unmapped["conditions"] += sum(c.icd10_code is None for c in chart.conditions)
            unmapped["procedures"] += sum(p.icd9cm3_code is None for p in chart.procedures)
        return {
            "profile": self.profile.value,
            "patients": self.patient_ids,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "resources": {"added": self.resources_added, "unchanged": self.resources_unchanged},
            "raw": {"kept": len(self.raw), "added": self.raw_added, "unchanged": self.raw_unchanged},
            "raw_only": self.raw_only(),
            "unmapped": unmapped,
            "issues": self.counts(),
            "refused": [i.path for i in self.issues if i.kind == "refused"],
        }


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
# where resources we do not map name their patient (R4: Claim.patient, ExplanationOfBenefit.patient,
# CarePlan.subject, Goal.subject, ImagingStudy.subject, Coverage.beneficiary …)
_OWNER_KEYS = ("subject", "patient", "beneficiary")
# R4 reference targets of the subject we read (Composition.subject is Reference(Any))
_SUBJECT_TARGETS = {
    "Encounter": {"Patient", "Group"},
    "Condition": {"Patient", "Group"},
    "Observation": {"Patient", "Group", "Device", "Location"},
    "Procedure": {"Patient", "Group"},
    "MedicationRequest": {"Patient", "Group"},
    "AllergyIntolerance": {"Patient"},
    "Immunization": {"Patient"},
}
_REFERENCE_RULE = (
    "R4 Bundle §2.36.4 (Resolving references in Bundles): a urn:uuid / urn:oid reference resolves only to "
    "the fullUrl of an entry in the same Bundle"
)
_TYPE_RULE = "R4 StructureDefinition (element cardinality and data types)"
_REF_PATTERN = re.compile(r"^(?:.*/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


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
        {
            "field": ".".join([p for p in (path, *(str(p) for p in err["loc"])) if p]),
            "message": err["msg"],
            "rule": _TYPE_RULE,
        }
        for err in exc.errors()[:20]
    ]
    first = details[0] if details else {"field": path, "message": "invalid", "rule": _TYPE_RULE}
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

    def target(self, reference: str) -> tuple[str, str, bool] | None:
        """(type, id, inside this Bundle) of a reference; ``None`` for a form we cannot read (``#x``)."""
        if reference in self.by_url:
            rtype, rid = self.by_url[reference]
            return rtype, rid, True
        match = _REF_PATTERN.match(reference)
        if not match:
            return None
        rtype, rid = match.group(1), match.group(2)
        return rtype, rid, (rtype, rid) in self.by_type_id

    def resolve(self, reference: str, expected: str, path: str) -> str:
        """The strict profile's rule: the reference must name an entry of this Bundle."""
        found = self.target(reference)
        if found is None:
            raise rd.fail(path, f"无法解析的引用 unresolvable reference {reference!r}")
        rtype, rid, inside = found
        if rtype != expected or not inside:
            raise rd.fail(
                path, f"引用的 {expected} 不在 Bundle 中 reference {reference!r} not in this Bundle"
            )
        return rid


def _check_references(value: Any, path: str, index: _Index) -> None:
    """Only a ``urn:uuid:`` / ``urn:oid:`` reference that matches no entry is broken (R4 Bundle §2.36.4);
    relative (``Patient/123``), absolute and ``#contained`` references are valid even when their target
    is not in the Bundle — they are kept, unresolved."""
    if isinstance(value, dict):
        for key, sub in value.items():
            if key == "reference" and isinstance(sub, str):
                if sub.startswith(("urn:uuid:", "urn:oid:")) and sub not in index.by_url:
                    raise InvalidFhir(
                        f"{path}.reference: 引用的条目不在 Bundle 中 {sub!r} matches no entry's fullUrl",
                        details=[
                            {
                                "field": f"{path}.reference",
                                "message": "broken reference",
                                "rule": _REFERENCE_RULE,
                            }
                        ],
                    )
            elif key != "contained":
                _check_references(sub, f"{path}.{key}", index)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_references(item, f"{path}[{i}]", index)


def _prune(value: Any) -> Any:
    """Drop JSON nulls (FHIR JSON has none; fhir.resources reads them as absent), so readers see one form."""
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune(v) for v in value if v is not None]
    return value


def _ensure_id(res: Json, url: str | None, index: int, request: Any = None) -> Json:
    if res.get("id"):
        return res
    # a transaction PUT names the id in its url (``Patient/123``); a POST has none — derive a stable one
    if isinstance(request, dict):
        match = _REF_PATTERN.match(str(request.get("url") or "").split("?")[0])
        if match and match.group(1) == res.get("resourceType"):
            return {**res, "id": match.group(2)}
    seed = url or f"entry-{index}"
    digest = hashlib.sha256(seed.encode()).hexdigest()[:16]
    return {**res, "id": f"{str(res.get('resourceType', 'R'))[:3].lower()}-{digest}"}


def _owner(res: Json, index: _Index, patients: dict[str, Patient]) -> tuple[str | None, bool]:
    """(patient id, whether that Patient is in this Bundle) for a resource; a resource that names no
    patient (Organization, Practitioner, Medication …) belongs to the Bundle's only Patient, if it has one."""
    for key in _OWNER_KEYS:
        ref = (res.get(key) or {}).get("reference") if isinstance(res.get(key), dict) else None
        if not ref:
            continue
        found = index.target(str(ref))
        if found and found[0] == "Patient":
            return found[1], found[1] in patients
    if len(patients) == 1:
        return next(iter(patients)), True
    return None, False


def bundle_to_charts(
    bundle: Any,
    *,
    strict: bool = False,
    profile: Profile | str = Profile.r4,
    mapper: CodeMapper | None = None,
) -> ImportResult:
    """A Bundle (any R4 type: collection, transaction, batch, document, searchset) → charts, all or
    nothing. ``strict``: anything the record cannot hold exactly is an error. ``profile``: which rules
    (see :class:`Profile`). ``mapper``: translates other code systems to ICD-10 / ICD-9-CM-3 (default: the
    cited SNOMED CT table in ``code_maps.toml``)."""
    profile = Profile(profile)
    ctx_strict = profile is Profile.medfusion_strict
    mapper = mapper if mapper is not None else TableMapper()
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise rd.fail("resourceType", "须为 FHIR Bundle (resourceType 'Bundle')")
    raw_entries = _validate_envelope(bundle)
    _check_version(bundle)
    issues: list[ImportIssue] = []
    entries: list[tuple[str, Json, str | None]] = []
    had_id: list[bool] = []
    for index, entry in enumerate(raw_entries):
        path = f"entry[{index}].resource"
        res = entry.get("resource") if isinstance(entry, dict) else None
        request = entry.get("request") if isinstance(entry, dict) else None
        if res is None and isinstance(request, dict) and request.get("method") in ("GET", "HEAD", "DELETE"):
            issues.append(
                ImportIssue(
                    path=f"entry[{index}].request",
                    kind="refused",
                    message=f"{request.get('method')} {request.get('url')}: 导入从不删除或查询 an import "
                    "never deletes or reads; not applied",
                )
            )
            continue
        if not isinstance(res, dict):
            raise rd.fail(path, "缺少 resource missing resource")
        _validate_fhir(res, path)
        had_id.append(bool(res.get("id")))
        entries.append(
            (path, _ensure_id(_prune(res), entry.get("fullUrl"), index, request), entry.get("fullUrl"))
        )
    urls = [url for _p, _r, url in entries if url]
    repeated = sorted({u for u in urls if urls.count(u) > 1})
    if repeated and bundle.get("type") != "history":
        raise InvalidFhir(
            f"entry.fullUrl: fullUrl 重复 repeated {repeated[0]!r}",
            details=[{"field": "entry.fullUrl", "message": "repeated fullUrl", "rule": "R4 Bundle bdl-7"}],
        )
    index_ = _Index(entries)
    for path, res, _url in entries:
        _check_references(res, path, index_)
    patients: dict[str, Patient] = {}
    children: dict[str, dict[str, list[Any]]] = {}
    generated: list[str] = []
    placed: dict[tuple[str, str, str], Any] = {}  # (patient id, type, id) → record item
    for (path, res, _url), kept_id in zip(entries, had_id, strict=True):
        if res["resourceType"] != "Patient":
            continue
        if not kept_id:
            generated.append(str(res["id"]))
        patient_ctx = rd.Context(strict=ctx_strict)

        def read_patient(r: Json, _c: rd.Context = patient_ctx) -> rd.Reading:
            return rd.read_patient(r, _c)

        patient = _read_one(res, path, Patient, read_patient, export.patient_resource, issues)
        if patient.id in patients:  # a second Patient with the same id would silently replace the first
            raise rd.fail(f"{path}.id", f"Bundle 中患者 id 重复 Patient id {patient.id!r} repeated")
        patients[patient.id] = patient
        children[patient.id] = {kind: [] for kind in CHILD_MODELS}
        placed[(patient.id, "Patient", patient.id)] = patient
    if not patients and ctx_strict:
        raise rd.fail("entry", "Bundle 中没有 Patient 资源 no Patient resource in the Bundle")
    ordered = sorted(entries, key=lambda e: e[1]["resourceType"] != "Encounter")  # encounters first
    for path, res, _url in ordered:
        rtype = res["resourceType"]
        if rtype == "Patient":
            continue
        if rtype not in _READERS:
            message = f"{rtype} 不属于病历模型，原始资源已保留 not part of the record, kept raw"
            issues.append(ImportIssue(path=path, kind="skipped", message=message))
            continue
        kind, reader = _READERS[rtype]
        subject_key = _SUBJECT_KEY.get(rtype, "subject")
        ref = (res.get(subject_key) or {}).get("reference")
        target = index_.target(str(ref)) if ref else None
        if ctx_strict:
            if not ref:
                raise rd.fail(f"{path}.{subject_key}", "须引用患者 a patient reference is required")
            pid = index_.resolve(ref, "Patient", f"{path}.{subject_key}.reference")
        else:
            if target and target[2] and target[0] not in _SUBJECT_TARGETS.get(rtype, {target[0]}):
                raise InvalidFhir(
                    f"{path}.{subject_key}.reference: {rtype}.{subject_key} 不能引用 {target[0]}",
                    details=[
                        {
                            "field": f"{path}.{subject_key}.reference",
                            "message": f"Reference({'|'.join(sorted(_SUBJECT_TARGETS[rtype]))}) expected",
                            "rule": f"R4 {rtype}.{subject_key} type (Reference target profile)",
                        }
                    ],
                )
            if not target or target[0] != "Patient" or target[1] not in patients:
                where = ref or "none"
                issues.append(
                    ImportIssue(
                        path=f"{path}.{subject_key}",
                        kind="skipped",
                        message=f"患者不在此 Bundle 中，原始资源已保留 patient {where!r} not in this "
                        "Bundle, kept raw",
                    )
                )
                continue
            pid = target[1]
        ctx = rd.Context(
            strict=ctx_strict,
            resolve=_encounter_resolver(index_, placed, pid, path, ctx_strict),
            mapper=mapper,
            contained={str(c_.get("id")): c_ for c_ in res.get("contained") or [] if isinstance(c_, dict)},
        )

        def read(
            r: Json,
            _reader: Callable[..., rd.Reading] = reader,
            _key: str = subject_key,
            _ctx: rd.Context = ctx,
        ) -> rd.Reading:
            reading = _reader(r, _ctx)
            reading.take(_key)
            return reading

        def exporter(model: Any, _rtype: str = rtype, _pid: str = pid) -> Json:
            return _EXPORTERS[_rtype](model, _pid)

        local: list[ImportIssue] = []
        try:
            item = _read_one(res, path, CHILD_MODELS[kind], read, exporter, local)
        except rd.Skip as skip:
            issues.append(ImportIssue(path=path, kind="skipped", message=f"{skip}；原始资源已保留 kept raw"))
            continue
        except InvalidFhir as exc:
            if ctx_strict:
                raise
            issues.append(
                ImportIssue(
                    path=path, kind="skipped", message=f"{exc.message}；病历未收录，原始资源已保留 kept raw"
                )
            )
            continue
        issues.extend(local)
        children[pid][kind].append(item)
        placed[(pid, rtype, str(item.id))] = item
    charts = [
        _chart(pid, patient, children[pid], placed, issues, ctx_strict) for pid, patient in patients.items()
    ]
    if strict:
        lossy = [i for i in issues if i.kind in ("changed", "dropped", "skipped")]
        if lossy:
            raise InvalidFhir(
                f"严格模式：{len(lossy)} 处内容无法原样保存 strict import: "
                f"{lossy[0].path}: {lossy[0].message}",
                details=[i.model_dump() for i in lossy[:50]],
            )
    raw = []
    for _path, res, _url in entries:
        rtype, rid = str(res["resourceType"]), str(res["id"])
        owner, _inside = _owner(res, index_, patients) if rtype != "Patient" else (rid, True)
        item = placed.get((owner or "", rtype, rid))
        raw.append(
            RawResource(
                patient_id=owner,
                resource_type=rtype,
                resource_id=rid,
                body=res,
                model_hash=model_hash(item) if item is not None else None,
            )
        )
    return ImportResult(charts=charts, issues=issues, generated_ids=generated, profile=profile, raw=raw)


def _encounter_resolver(
    index: _Index, placed: dict[tuple[str, str, str], Any], pid: str, path: str, strict: bool
) -> Callable[[str], str | None]:
    def resolve(reference: str) -> str | None:
        if strict:
            return index.resolve(reference, "Encounter", f"{path}.encounter.reference")
        found = index.target(reference)
        if found and found[0] == "Encounter" and (pid, "Encounter", found[1]) in placed:
            return found[1]
        return None  # outside this chart: kept verbatim in fhir_extra, unresolved

    return resolve


_CHART_ITEM = re.compile(r"(\w+)\.(\d+)\.")


def _chart(
    pid: str,
    patient: Patient,
    kids: dict[str, list[Any]],
    placed: dict[tuple[str, str, str], Any],
    issues: list[ImportIssue],
    strict: bool,
) -> PatientChart:
    """The chart; outside the strict profile an item that breaks a chart rule (a time before birth, an
    id twice) leaves the chart, is kept raw and reported — the rest of the chart stands."""
    while True:
        try:
            return PatientChart(patient=patient, **kids)
        except ValidationError as exc:
            if strict:
                raise _model_error(exc, f"Patient/{pid}") from None
            text = str(exc.errors()[0].get("msg", ""))
            match = _CHART_ITEM.search(text)
            if not match or match.group(1) not in kids or int(match.group(2)) >= len(kids[match.group(1)]):
                raise _model_error(exc, f"Patient/{pid}") from None
            kind, position = match.group(1), int(match.group(2))
            item = kids[kind].pop(position)
            rtype = export.RESOURCE_TYPES[kind]
            placed.pop((pid, rtype, str(item.id)), None)
            issues.append(
                ImportIssue(
                    path=f"{rtype}/{item.id}",
                    kind="skipped",
                    message=f"{text.removeprefix('Value error, ')}；病历未收录，原始资源已保留 kept raw",
                )
            )


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
    for kind, notes in (
        ("warning", reading.warnings),
        ("mapped", reading.mapped),
        ("unmapped", reading.unmapped),
    ):
        for sub, message in notes:
            issues.append(ImportIssue(path=f"{path}.{sub}", kind=kind, message=message))
    issues.extend(lost_paths(res, exporter(item), path))
    return item
