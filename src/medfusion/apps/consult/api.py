"""/api/consult — the pocket chief physician (clinicians: ``draft:review``, since it advises on diagnosis and
treatment); naming a patient reads the chart through the audited patient service."""

from __future__ import annotations

from fastapi import APIRouter

from medfusion.api.auth import DB, CurrentPrincipal
from medfusion.api.graph import graph_for
from medfusion.api.knowledge import knowledge_base
from medfusion.apps.consult.models import ConsultRequest, ConsultResult
from medfusion.apps.consult.service import ConsultService
from medfusion.errors import PermissionDenied
from medfusion.llm import get_general_model
from medfusion.settings import get_settings
from medfusion.store.access import Permission

router = APIRouter(prefix="/api", tags=["consult 口袋主任医师"])


@router.post(
    "/consult", response_model=ConsultResult, summary="口袋主任医师：鉴别诊断、检查、治疗与用药建议（草稿）"
)
def consult(db: DB, principal: CurrentPrincipal, request: ConsultRequest) -> ConsultResult:
    if not principal.may(Permission.draft_review):
        raise PermissionDenied("会诊建议面向临床医护人员 consults are for clinicians")
    service = ConsultService(
        db, principal, get_general_model(get_settings()), knowledge_base(db), graph_for(db)
    )
    return service.consult(request)
