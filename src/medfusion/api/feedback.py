"""/api/feedback — clinicians accept, edit or reject a draft (``draft:review``); every act is audited and
re-weights retrieval. Listing needs the same permission; runs about a patient also need ``patient:read``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from medfusion.api.deps import DB, CurrentPrincipal
from medfusion.feedback.service import FeedbackEntry, FeedbackRecord, FeedbackRequest, FeedbackService

router = APIRouter(prefix="/api/feedback", tags=["feedback 临床反馈"])


@router.post("", response_model=FeedbackRecord, status_code=201, summary="采纳、修改或驳回一份草稿（审计）")
def give(db: DB, principal: CurrentPrincipal, request: FeedbackRequest) -> FeedbackRecord:
    return FeedbackService(db, principal).record(request)


@router.get("", response_model=list[FeedbackEntry], summary="反馈记录")
def entries(
    db: DB,
    principal: CurrentPrincipal,
    run_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[FeedbackEntry]:
    return FeedbackService(db, principal).entries(run_id, limit)
