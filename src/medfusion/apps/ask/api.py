"""/api/ask — the platform's one question entry: a cited, guarded answer under the output contract.

Any signed-in role may ask; naming a patient reads that chart through the audited patient service (a
patient may name only themselves). Every run is stored with its trace and audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from medfusion.apps.ask.models import AskRequest, AskResult
from medfusion.apps.ask.service import AskService
from medfusion.apps.deps import DB, CurrentPrincipal, General, Knowledge, KnowledgeGraph

router = APIRouter(prefix="/api", tags=["ask 问答"])


def ask_service(
    db: DB, principal: CurrentPrincipal, general: General, kb: Knowledge, graph: KnowledgeGraph
) -> AskService:
    return AskService(db, principal, general, kb, graph)


Service = Annotated[AskService, Depends(ask_service)]


@router.post("/ask", response_model=AskResult, summary="统一问答入口：带引用、经护栏检查、需医生确认")
def ask(service: Service, request: AskRequest) -> AskResult:
    return service.ask(request)
