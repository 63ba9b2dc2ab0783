"""/api/ask — the platform's one question entry: a cited, guarded answer under the output contract.

Any signed-in role may ask; naming a patient reads that chart through the audited patient service (a
patient may name only themselves). Every run is stored with its trace and audited."""

from __future__ import annotations

from fastapi import APIRouter

from medfusion.agents.ask import AskRequest, AskResult, AskService
from medfusion.agents.runs import StoredRun, stored_run
from medfusion.api.auth import DB, CurrentPrincipal
from medfusion.api.graph import graph_for
from medfusion.api.knowledge import knowledge_base
from medfusion.llm import get_general_model
from medfusion.settings import get_settings

router = APIRouter(prefix="/api", tags=["ask 问答"])


@router.post("/ask", response_model=AskResult, summary="统一问答入口：带引用、经护栏检查、需医生确认")
def ask(db: DB, principal: CurrentPrincipal, request: AskRequest) -> AskResult:
    service = AskService(db, principal, get_general_model(get_settings()), knowledge_base(db), graph_for(db))
    return service.ask(request)


@router.get(
    "/ask/runs/{run_id}", response_model=StoredRun, summary="一次问答的完整记录与步骤轨迹（本人或管理员）"
)
def run(db: DB, principal: CurrentPrincipal, run_id: str) -> StoredRun:
    return stored_run(db, principal, run_id)
