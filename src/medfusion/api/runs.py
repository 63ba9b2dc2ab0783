"""/api/ask/runs/{run_id} — one stored assistive run (ask, consult, MDT …) with its step trace (its owner or
an administrator)."""

from __future__ import annotations

from fastapi import APIRouter

from medfusion.agents.runs import StoredRun, stored_run
from medfusion.api.deps import DB, CurrentPrincipal

router = APIRouter(prefix="/api", tags=["ask 问答"])


@router.get(
    "/ask/runs/{run_id}", response_model=StoredRun, summary="一次问答的完整记录与步骤轨迹（本人或管理员）"
)
def run(db: DB, principal: CurrentPrincipal, run_id: str) -> StoredRun:
    return stored_run(db, principal, run_id)
