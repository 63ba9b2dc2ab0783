"""/api/patients — search, read, write, full chart, FHIR R4 import and export."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from medfusion.api.deps import DB, CurrentPrincipal
from medfusion.api.limits import MAX_OFFSET
from medfusion.errors import InvalidFhir, InvalidInput, NotFound
from medfusion.graph import Graph
from medfusion.graph.code_mapping import LexiconMapper
from medfusion.interop.fhir import ImportIssue, Profile
from medfusion.interop.fhir.constants import FHIR_MEDIA_TYPE
from medfusion.privacy.service import tag_identifiers
from medfusion.record.models import Patient, PatientChart
from medfusion.store.display import ShownChart, ShownPage, ShownPatient, shown_chart, shown_patient
from medfusion.store.patient_service import PatientService
from medfusion.store.patients import PatientFilters
from medfusion.store.resource_versions import HistoryPage, ResourceKind, ResourceVersion

router = APIRouter(prefix="/api/patients", tags=["patients 患者"])
# Identifiers are shown per role (store/display_policy.toml); the full values on request, audited.
Reveal = Annotated[
    Literal["identifiers"] | None,
    Query(
        description="identifiers: 完整身份证号/电话/住址/医保号（需 identifier:reveal；审计 patient.reveal）"
    ),
]
Reason = Annotated[str | None, Query(max_length=200, description="查看完整标识的理由（记入审计）")]


@router.get(
    "", response_model=ShownPage, summary="患者检索 (all filters optional, AND-combined; identifiers masked)"
)
async def search_patients(
    db: DB,
    principal: CurrentPrincipal,
    name: Annotated[str | None, Query(max_length=64, description="姓名（包含匹配）")] = None,
    id_number: Annotated[str | None, Query(max_length=18, description="居民身份证号（精确）")] = None,
    department: Annotated[str | None, Query(max_length=200, description="就诊科室（精确）")] = None,
    diagnosis_code: Annotated[str | None, Query(max_length=40, description="ICD-10 编码，含亚目")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> ShownPage:
    filters = PatientFilters(
        name=name, id_number=id_number, department=department, diagnosis_code=diagnosis_code
    )
    # async with one explicit thread-pool hop for the blocking work: a plain ``def`` route costs a second hop
    # for FastAPI's response validation (~0.25 ms CPU each, measured; issue 15 part 7)
    return await run_in_threadpool(PatientService(db, principal).search, filters, limit=limit, offset=offset)


@router.post("", response_model=PatientChart, status_code=201, summary="新建患者（可附完整病历）")
def create_patient(chart: PatientChart, db: DB, principal: CurrentPrincipal) -> PatientChart:
    return PatientService(db, principal).create(chart)


@router.get("/{patient_id}", response_model=ShownPatient, summary="患者基本信息（标识按角色显示）")
def get_patient(
    patient_id: str, db: DB, principal: CurrentPrincipal, reveal: Reveal = None, reason: Reason = None
) -> ShownPatient:
    patient = PatientService(db, principal).get(patient_id)
    return shown_patient(db, principal, patient, reveal=reveal is not None, reason=reason)


@router.put("/{patient_id}", response_model=Patient, summary="更新患者基本信息")
def update_patient(patient_id: str, patient: Patient, db: DB, principal: CurrentPrincipal) -> Patient:
    if patient.id != patient_id:
        raise InvalidInput.for_field("id", "路径与请求体中的患者 id 不一致 path and body ids differ")
    return PatientService(db, principal).update(patient)


@router.get("/{patient_id}/chart", response_model=ShownChart, summary="完整病历（标识按角色显示）")
async def get_chart(
    patient_id: str, db: DB, principal: CurrentPrincipal, reveal: Reveal = None, reason: Reason = None
) -> ShownChart:
    def read() -> ShownChart:  # in the thread pool, as search_patients (one hop)
        chart = PatientService(db, principal).chart(patient_id)
        return shown_chart(
            db, principal, chart, reveal=reveal is not None, reason=reason, redact=tag_identifiers
        )

    return await run_in_threadpool(read)


@router.put(
    "/{patient_id}/chart",
    response_model=PatientChart,
    summary="整体替换病历（改动的条目记为新版本，省去的条目软删除，均可在历史中查看）",
)
def replace_chart(
    patient_id: str,
    chart: PatientChart,
    db: DB,
    principal: CurrentPrincipal,
    reason: Annotated[
        str | None, Query(max_length=2000, description="修改/删除原因（记入版本历史）why, kept in history")
    ] = None,
) -> PatientChart:
    if chart.patient.id != patient_id:
        raise InvalidInput.for_field("patient.id", "路径与请求体中的患者 id 不一致 path and body ids differ")
    return PatientService(db, principal).replace_chart(chart, reason=reason)


# --- versions (FHIR _history): every write keeps the previous version; a delete is a soft delete ---------
HistoryLimit = Annotated[int, Query(ge=1, le=500)]
HistoryOffset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


@router.get("/{patient_id}/history", response_model=HistoryPage, summary="病历版本历史（含已删除条目）")
def chart_history(
    patient_id: str,
    db: DB,
    principal: CurrentPrincipal,
    kind: Annotated[ResourceKind | None, Query(description="只看一类条目 one kind only")] = None,
    limit: HistoryLimit = 100,
    offset: HistoryOffset = 0,
) -> HistoryPage:
    return PatientService(db, principal).history(
        patient_id, kind=kind, limit=limit, offset=offset, redact=tag_identifiers
    )


@router.get(
    "/{patient_id}/{kind}/{resource_id}/_history",
    response_model=HistoryPage,
    summary="单个条目的全部版本（FHIR _history）",
)
def resource_history(
    patient_id: str,
    kind: ResourceKind,
    resource_id: str,
    db: DB,
    principal: CurrentPrincipal,
    limit: HistoryLimit = 100,
    offset: HistoryOffset = 0,
) -> HistoryPage:
    return PatientService(db, principal).history(
        patient_id, kind=kind, resource_id=resource_id, limit=limit, offset=offset, redact=tag_identifiers
    )


@router.get(
    "/{patient_id}/{kind}/{resource_id}/_history/{version}",
    response_model=ResourceVersion,
    summary="条目的某一版本（FHIR vread）",
)
def resource_version(
    patient_id: str, kind: ResourceKind, resource_id: str, version: int, db: DB, principal: CurrentPrincipal
) -> ResourceVersion:
    page = PatientService(db, principal).history(
        patient_id, kind=kind, resource_id=resource_id, limit=500, redact=tag_identifiers
    )
    for item in page.items:
        if item.version == version:
            return item
    raise NotFound(
        f"版本不存在 version {version} of {resource_id} not found",
        details={"resource_id": resource_id, "version": version},
    )


class Deletion(BaseModel):
    patient_id: str
    kind: str
    resource_id: str
    version: int
    deleted: bool = True


@router.delete(
    "/{patient_id}/{kind}/{resource_id}",
    response_model=Deletion,
    summary="软删除一个病历条目（须说明原因；从病历隐藏，保留在历史中）",
)
def delete_resource(
    patient_id: str,
    kind: ResourceKind,
    resource_id: str,
    db: DB,
    principal: CurrentPrincipal,
    reason: Annotated[str, Query(min_length=1, max_length=2000, description="删除原因（必填）why")],
) -> Deletion:
    version = PatientService(db, principal).delete_resource(patient_id, kind, resource_id, reason)
    return Deletion(patient_id=patient_id, kind=kind, resource_id=resource_id, version=version)


@router.get(
    "/{patient_id}/fhir",
    summary="导出 FHIR R4 Bundle",
    responses={200: {"content": {"application/fhir+json": {}}}},
)
def export_fhir(patient_id: str, db: DB, principal: CurrentPrincipal) -> JSONResponse:
    bundle = PatientService(db, principal).export_fhir(patient_id, redact=tag_identifiers)
    return JSONResponse(bundle, media_type=FHIR_MEDIA_TYPE)


class ImportSummary(BaseModel):
    patients: list[str]
    resources: int
    issues: list[ImportIssue]
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    resources_added: int = 0
    resources_unchanged: int = 0
    mode: Literal["add", "merge"] = "add"
    revised: list[dict[str, Any]] = []  # resources written as a new version: resource, fields, restored
    resources_revised: int = 0
    profile: Profile = Profile.r4
    unmapped: dict[str, int] = {}  # conditions / procedures kept without ICD-10 / ICD-9-CM-3
    raw_kept: int = 0  # resources stored as received (fhir_raw_resources)
    raw_only: dict[str, int] = {}  # of those, what the record does not hold, by resource type


@router.post(
    "/fhir",
    response_model=ImportSummary,
    status_code=201,
    summary="导入 FHIR R4 Bundle（全部成功或全部不写；从不覆盖或删除已存内容，冲突为 409）",
    responses={409: {"description": "patient_identity_conflict / chart_resource_conflict — nothing written"}},
)
async def import_fhir(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    strict: Annotated[bool, Query(description="任何无法原样保存的内容都视为错误")] = False,
    mode: Annotated[
        Literal["add", "merge"],
        Query(
            description="add：冲突即 409；merge：冲突写为新版本（保留旧版本）conflicts become new versions"
        ),
    ] = "add",
    profile: Annotated[
        Profile, Query(description="r4：R4 允许的都接受（默认）；medfusion-strict：本院数据源的严格规则")
    ] = Profile.r4,
) -> ImportSummary:
    try:
        bundle: Any = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise InvalidFhir.for_field("body", "不是有效的 JSON not valid JSON") from None
    result = PatientService(db, principal).import_fhir(
        bundle, strict=strict, merge=mode == "merge", profile=profile.value, mapper=LexiconMapper(Graph(db))
    )
    return ImportSummary(
        patients=result.patient_ids,
        resources=sum(1 + sum(len(v) for v in c.children().values()) for c in result.charts),
        issues=result.issues,
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        resources_added=result.resources_added,
        resources_unchanged=result.resources_unchanged,
        mode=result.mode,
        revised=result.revised,
        resources_revised=result.resources_revised,
        profile=result.profile,
        unmapped=result.summary()["unmapped"],
        raw_kept=len(result.raw),
        raw_only=result.raw_only(),
    )
