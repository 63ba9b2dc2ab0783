"""/api/consult — the pocket chief physician (clinicians: ``draft:review``, since it advises on diagnosis and
treatment); naming a patient reads the chart through the audited patient service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from medfusion.apps.consult.models import ConsultRequest, ConsultResult
from medfusion.apps.consult.service import ConsultService
from medfusion.apps.deps import DB, General, Knowledge, KnowledgeGraph, requires
from medfusion.store.access import Permission, Principal

router = APIRouter(prefix="/api", tags=["consult 口袋主任医师"])
Clinician = Annotated[
    Principal,
    Depends(
        requires(Permission.draft_review, "consult", "会诊建议面向临床医护人员 consults are for clinicians")
    ),
]


def consult_service(
    db: DB, principal: Clinician, general: General, kb: Knowledge, graph: KnowledgeGraph
) -> ConsultService:
    return ConsultService(db, principal, general, kb, graph)


@router.post(
    "/consult", response_model=ConsultResult, summary="口袋主任医师：鉴别诊断、检查、治疗与用药建议（草稿）"
)
def consult(
    service: Annotated[ConsultService, Depends(consult_service)], request: ConsultRequest
) -> ConsultResult:
    return service.consult(request)
