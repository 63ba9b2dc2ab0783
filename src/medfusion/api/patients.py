"""/api/patients — search, read, write, full chart, FHIR R4 import and export."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from medfusion.api.deps import DB, CurrentPrincipal
from medfusion.api.limits import MAX_OFFSET
from medfusion.errors import InvalidFhir, InvalidInput
from medfusion.interop.fhir import ImportIssue
from medfusion.interop.fhir.constants import FHIR_MEDIA_TYPE
from medfusion.record.models import Patient, PatientChart
from medfusion.store.patient_service import PatientService
from medfusion.store.patients import PatientFilters, PatientPage

router = APIRouter(prefix="/api/patients", tags=["patients 患者"])


@router.get("", response_model=PatientPage, summary="患者检索 (all filters optional, AND-combined)")
def search_patients(
    db: DB,
    principal: CurrentPrincipal,
    name: Annotated[str | None, Query(max_length=64, description="姓名（包含匹配）")] = None,
    id_number: Annotated[str | None, Query(max_length=18, description="居民身份证号（精确）")] = None,
    department: Annotated[str | None, Query(max_length=200, description="就诊科室（精确）")] = None,
    diagnosis_code: Annotated[str | None, Query(max_length=40, description="ICD-10 编码，含亚目")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> PatientPage:
    filters = PatientFilters(
        name=name, id_number=id_number, department=department, diagnosis_code=diagnosis_code
    )
    return PatientService(db, principal).search(filters, limit=limit, offset=offset)


@router.post("", response_model=PatientChart, status_code=201, summary="新建患者（可附完整病历）")
def create_patient(chart: PatientChart, db: DB, principal: CurrentPrincipal) -> PatientChart:
    return PatientService(db, principal).create(chart)


@router.get("/{patient_id}", response_model=Patient, summary="患者基本信息")
def get_patient(patient_id: str, db: DB, principal: CurrentPrincipal) -> Patient:
    return PatientService(db, principal).get(patient_id)


@router.put("/{patient_id}", response_model=Patient, summary="更新患者基本信息")
def update_patient(patient_id: str, patient: Patient, db: DB, principal: CurrentPrincipal) -> Patient:
    if patient.id != patient_id:
        raise InvalidInput.for_field("id", "路径与请求体中的患者 id 不一致 path and body ids differ")
    return PatientService(db, principal).update(patient)


@router.get("/{patient_id}/chart", response_model=PatientChart, summary="完整病历")
def get_chart(patient_id: str, db: DB, principal: CurrentPrincipal) -> PatientChart:
    return PatientService(db, principal).chart(patient_id)


@router.put("/{patient_id}/chart", response_model=PatientChart, summary="整体替换病历")
def replace_chart(patient_id: str, chart: PatientChart, db: DB, principal: CurrentPrincipal) -> PatientChart:
    if chart.patient.id != patient_id:
        raise InvalidInput.for_field("patient.id", "路径与请求体中的患者 id 不一致 path and body ids differ")
    return PatientService(db, principal).replace_chart(chart)


@router.get(
    "/{patient_id}/fhir",
    summary="导出 FHIR R4 Bundle",
    responses={200: {"content": {"application/fhir+json": {}}}},
)
def export_fhir(patient_id: str, db: DB, principal: CurrentPrincipal) -> JSONResponse:
    bundle = PatientService(db, principal).export_fhir(patient_id)
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
) -> ImportSummary:
    try:
        bundle: Any = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise InvalidFhir.for_field("body", "不是有效的 JSON not valid JSON") from None
    result = PatientService(db, principal).import_fhir(bundle, strict=strict)
    return ImportSummary(
        patients=result.patient_ids,
        resources=sum(1 + sum(len(v) for v in c.children().values()) for c in result.charts),
        issues=result.issues,
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        resources_added=result.resources_added,
        resources_unchanged=result.resources_unchanged,
    )
