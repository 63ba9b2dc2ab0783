"""/api/mdt — multi-disciplinary consultation (clinicians: ``draft:review``); a patient id reads the chart
through the audited patient service; a FHIR Bundle is consulted without being stored."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from medfusion.apps.deps import DB, General, Knowledge, KnowledgeGraph, requires
from medfusion.apps.mdt.models import MdtRequest, MdtResult
from medfusion.apps.mdt.service import MdtService
from medfusion.store.access import Permission, Principal

router = APIRouter(prefix="/api", tags=["mdt 多学科会诊"])
Clinician = Annotated[
    Principal, Depends(requires(Permission.draft_review, "mdt", "会诊面向临床医护人员 MDT is for clinicians"))
]


def mdt_service(
    db: DB, principal: Clinician, general: General, kb: Knowledge, graph: KnowledgeGraph
) -> MdtService:
    return MdtService(db, principal, general, kb, graph)


@router.post(
    "/mdt", response_model=MdtResult, summary="多学科会诊：并行专科意见、加权共识、冲突核查、纪要（草稿）"
)
def mdt(service: Annotated[MdtService, Depends(mdt_service)], request: MdtRequest) -> MdtResult:
    return service.run(request)
