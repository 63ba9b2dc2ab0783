"""/api/mdt — multi-disciplinary consultation (clinicians: ``draft:review``); a patient id reads the chart
through the audited patient service; a FHIR Bundle is consulted without being stored."""

from __future__ import annotations

from fastapi import APIRouter

from medfusion.api.auth import DB, CurrentPrincipal
from medfusion.api.graph import graph_for
from medfusion.api.knowledge import knowledge_base
from medfusion.apps.mdt.models import MdtRequest, MdtResult
from medfusion.apps.mdt.service import MdtService
from medfusion.errors import PermissionDenied
from medfusion.llm import get_general_model
from medfusion.settings import get_settings
from medfusion.store.access import Permission

router = APIRouter(prefix="/api", tags=["mdt 多学科会诊"])


@router.post(
    "/mdt", response_model=MdtResult, summary="多学科会诊：并行专科意见、加权共识、冲突核查、纪要（草稿）"
)
def mdt(db: DB, principal: CurrentPrincipal, request: MdtRequest) -> MdtResult:
    if not principal.may(Permission.draft_review):
        raise PermissionDenied("会诊面向临床医护人员 MDT is for clinicians")
    general = get_general_model(get_settings())
    return MdtService(db, principal, general, knowledge_base(db), graph_for(db)).run(request)
