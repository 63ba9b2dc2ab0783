"""/api/kb — search and ask (any signed-in role: guidelines are not patient data); upload and remove
documents and list packs (``knowledge:manage``, audited)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from pydantic import BaseModel, Field

from medfusion.api.deps import DB, CurrentPrincipal, Knowledge, KnowledgeGraph, requires
from medfusion.errors import NotFound
from medfusion.knowledge import packs, uploads
from medfusion.knowledge.answers import Answer, Answerer, PatientContext
from medfusion.knowledge.base import IngestResult, SearchFilters
from medfusion.knowledge.documents import Authority, DocType, DocumentMeta, Hit
from medfusion.knowledge.expansion import synonym_terms
from medfusion.knowledge.packs import PackInfo
from medfusion.store import audit
from medfusion.store.access import Permission, Principal

router = APIRouter(prefix="/api/kb", tags=["knowledge 知识库"])
_MANAGE = "需要知识库管理权限 knowledge:manage required"
Managing = Annotated[Principal, Depends(requires(Permission.knowledge_manage, "kb.ingest", _MANAGE))]
Removing = Annotated[Principal, Depends(requires(Permission.knowledge_manage, "kb.delete", _MANAGE))]


@router.get("/search", response_model=list[Hit], summary="知识检索（每条结果带来源与引用位置）")
def search(
    kb: Knowledge,
    graph: KnowledgeGraph,
    principal: CurrentPrincipal,
    q: Annotated[str, Query(min_length=1, max_length=500, description="检索语句")],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    doc_type: Annotated[DocType | None, Query(alias="type")] = None,
    authority: Annotated[Authority | None, Query()] = None,
    department: Annotated[str | None, Query(max_length=100)] = None,
    expand: Annotated[bool, Query(description="用图谱同义词扩展查询")] = False,
    source: Annotated[
        str,
        Query(
            max_length=200,
            pattern=r"^(own|all|pack:.+)$",
            description="own（用户自己导入的文档）| pack:<name>（某个知识包）| all",
        ),
    ] = "all",
) -> list[Hit]:
    filters = SearchFilters(doc_type=doc_type, authority=authority, department=department, source=source)
    expansions = synonym_terms(graph, q) if expand else None
    return kb.search(q, k=k, filters=filters, expansions=expansions)


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=500)
    k: int = Field(default=5, ge=1, le=20)
    patient_context: PatientContext | None = None


@router.post("/ask", response_model=Answer, summary="带引用的问答（每句注明出处；需医生确认）")
def ask(kb: Knowledge, graph: KnowledgeGraph, principal: CurrentPrincipal, request: AskRequest) -> Answer:
    return Answerer(kb, graph).answer(request.question, request.patient_context, k=request.k)


@router.post(
    "/documents", response_model=IngestResult, status_code=201, summary="上传文档（TXT/MD/HTML/DOCX/PDF）"
)
def upload(
    db: DB,
    kb: Knowledge,
    principal: Managing,
    file: Annotated[UploadFile, File(description="文档文件")],
    doc_type: Annotated[DocType, Form(alias="type")] = DocType.guideline,
    authority: Annotated[Authority, Form()] = Authority.guideline,
    publisher: Annotated[str | None, Form(max_length=200)] = None,
    department: Annotated[str | None, Form(max_length=100)] = None,
    embed: Annotated[bool, Form(description="同时计算向量（默认）；false 则稍后由 kb embed 完成")] = True,
) -> IngestResult:
    """Re-uploading the same file name updates that document (or leaves it unchanged). The document's chunks
    are embedded before the response (``embedded`` says how many); with ``embed=false`` they are searchable
    by their sparse channels until ``medfusion kb embed`` runs."""
    name = uploads.fit_name(file.filename or "upload.txt")  # fits the disk; the reader checks the type
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        with path.open("wb") as out:  # from the request's spool in 1 MiB pieces, never whole in memory
            shutil.copyfileobj(file.file, out, 1024 * 1024)
        meta = DocumentMeta(
            source=f"upload:{name}",
            title=path.stem,
            doc_type=doc_type,
            authority=authority,
            publisher=publisher,
            department=department,
        )
        result = kb.ingest_file(path, meta)
    if embed:
        # in this worker thread: no job processes are forked from the API server
        result.embedded = kb.embed(executor="inline", document_ids=[result.document_id])
    with db.session() as session:
        audit.record(
            session, principal.actor, "kb.ingest", detail={"source": result.source, "status": result.status}
        )
    return result


@router.delete("/documents", status_code=204, summary="删除文档")
def remove(
    db: DB, kb: Knowledge, principal: Removing, source: Annotated[str, Query(min_length=1, max_length=1000)]
) -> None:
    if not kb.delete(source):
        raise NotFound(f"知识库中没有该文档 not in the knowledge base: {source}")
    with db.session() as session:
        audit.record(session, principal.actor, "kb.delete", detail={"source": source})


@router.get("/packs", response_model=list[PackInfo], summary="已安装的知识包")
def installed_packs(db: DB, kb: Knowledge, principal: CurrentPrincipal) -> list[PackInfo]:
    # asking for the knowledge base installs the shipped packs on first use
    return packs.listing(db)
