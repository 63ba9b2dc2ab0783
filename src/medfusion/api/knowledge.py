"""/api/kb — search the knowledge base (any signed-in role: guidelines are not patient data)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from medfusion.api.auth import DB, CurrentPrincipal
from medfusion.api.graph import graph_for
from medfusion.knowledge import packs
from medfusion.knowledge.answers import Answer, Answerer, PatientContext
from medfusion.knowledge.base import KnowledgeBase, SearchFilters
from medfusion.knowledge.documents import Authority, DocType, Hit
from medfusion.knowledge.expansion import synonym_terms

router = APIRouter(prefix="/api/kb", tags=["knowledge 知识库"])
_bases: dict[str, KnowledgeBase] = {}


def _kb(db: DB) -> KnowledgeBase:
    # one instance per database keeps the in-memory index warm between requests
    if db.url not in _bases:
        packs.ensure_shipped(db)
        _bases[db.url] = KnowledgeBase(db)
    return _bases[db.url]


@router.get("/search", response_model=list[Hit], summary="知识检索（每条结果带来源与引用位置）")
def search(
    db: DB,
    principal: CurrentPrincipal,
    q: Annotated[str, Query(min_length=1, max_length=500, description="检索语句")],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    doc_type: Annotated[DocType | None, Query(alias="type")] = None,
    authority: Annotated[Authority | None, Query()] = None,
    department: Annotated[str | None, Query(max_length=100)] = None,
    expand: Annotated[bool, Query(description="用图谱同义词扩展查询")] = False,
) -> list[Hit]:
    filters = SearchFilters(doc_type=doc_type, authority=authority, department=department)
    expansions = synonym_terms(graph_for(db), q) if expand else None
    return _kb(db).search(q, k=k, filters=filters, expansions=expansions)


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=500)
    k: int = Field(default=5, ge=1, le=20)
    patient_context: PatientContext | None = None


@router.post("/ask", response_model=Answer, summary="带引用的问答（每句注明出处；需医生确认）")
def ask(db: DB, principal: CurrentPrincipal, request: AskRequest) -> Answer:
    return Answerer(_kb(db), graph_for(db)).answer(request.question, request.patient_context, k=request.k)
