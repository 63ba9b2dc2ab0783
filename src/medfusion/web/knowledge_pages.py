"""知识库 /knowledge: upload guidelines and other documents, watch them ingest and embed, browse documents and
their chunks, search with the matched spans marked, remove a document, see the packs and their review status.

Viewing and searching: roles holding ``patient:read`` or ``knowledge:manage`` (not a patient account);
uploading and removing: ``knowledge:manage`` — refusals are audited like the API's. An upload is received
to disk in pieces and ingested in the background (:mod:`medfusion.knowledge.uploads`); the page polls a
small JSON route for progress (a ``<noscript>`` refresh on the task page without JS). The upload route's
body limit is ``MEDFUSION_KB_UPLOAD_MAX_BYTES`` (``api/app.py`` raises it for :data:`UPLOAD_PATH` alone).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from medfusion.apps.deps import database as get_db
from medfusion.apps.deps import providers
from medfusion.apps.deps import settings as get_settings_dep
from medfusion.apps.page_frame import error_page, render, signed_in, to_login
from medfusion.errors import InvalidInput, MedFusionError, NotFound, PayloadTooLarge, PermissionDenied
from medfusion.knowledge import library, packs, uploads
from medfusion.knowledge.base import SearchFilters
from medfusion.knowledge.documents import Authority, DocType, Hit
from medfusion.knowledge.expansion import synonym_terms
from medfusion.knowledge.readers import SUPPORTED
from medfusion.store import audit
from medfusion.store.access import Permission, Principal
from medfusion.store.database import Database
from medfusion.store.tokens import require

router = APIRouter(include_in_schema=False)
UPLOAD_PATH = "/knowledge/documents"
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small text fields around the file
PER_PAGE = 25
CHUNKS_PER_PAGE = 20
_VIEW = "知识库需要 patient:read 或 knowledge:manage 权限（患者账号不可用）knowledge base: staff only"
_MANAGE = "需要知识库管理权限 knowledge:manage required"
CHANNEL_LABELS = {"words": "词", "bigrams": "字", "dense": "向量"}
REVIEW_LABELS = {
    "needs_clinician_review": ("待临床医生审核", "badge-warn"),
    "clinician_accepted": ("已经临床医生审核", "badge-ok"),
    "source_reproduced": ("照录权威来源", "badge-info"),
}


def may_view(principal: Principal) -> bool:
    return not principal.confined() and (
        principal.may(Permission.patient_read) or principal.may(Permission.knowledge_manage)
    )


def _require_view(db: Database, principal: Principal, action: str) -> None:
    if not may_view(principal):
        with db.session() as session:
            audit.record(session, principal.actor, action, audit.Outcome.denied)
        raise PermissionDenied(_VIEW)


def _size_label(limit: int) -> str:
    return f"{limit / 1024 / 1024:.0f} MB" if limit >= 1024 * 1024 else f"{limit / 1024:.0f} KB"


def _source_filter(source: str | None) -> str:
    if source in (None, "", "all"):
        return "all"
    if source == "own" or source.startswith("pack:"):
        return source
    raise InvalidInput.for_field("source", "须为 own、all 或 pack:<名称> must be own, all or pack:<name>")


def _page(
    request: Request,
    principal: Principal,
    *,
    status: int = 200,
    source: str = "all",
    page: int = 1,
    upload_error: MedFusionError | None = None,
    form: dict[str, str] | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    db = get_db(request)
    providers(request).knowledge()  # the first use installs the shipped packs
    limit = get_settings_dep(request).kb_upload_max_bytes
    root = uploads.root_for(get_settings_dep(request).resolved_data_dir)
    return render(
        request,
        "knowledge.html",
        principal,
        status=status,
        can_manage=principal.may(Permission.knowledge_manage),
        library=library.documents(db, source=source, page=page, per_page=PER_PAGE),
        source=source,
        packs=packs.listing(db),
        tasks=uploads.tasks(root, limit=10),
        limit_bytes=limit,
        limit_label=_size_label(limit),
        accept=",".join(SUPPORTED),
        doc_types=library.DOC_TYPE_LABELS,
        authorities=list(Authority),
        review_labels=REVIEW_LABELS,
        idempotency_key=uuid.uuid4().hex,
        upload_error=upload_error,
        form=form or {},
        notice=notice,
    )


@router.get("/knowledge", response_class=HTMLResponse)
def knowledge_home(
    request: Request,
    source: Annotated[str | None, Query(max_length=200)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    removed: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    try:
        _require_view(get_db(request), principal, "kb.view")
        chosen = _source_filter(source)
    except MedFusionError as error:
        return error_page(request, principal, error)
    notice = f"已删除文档「{removed}」 removed" if removed else None
    return _page(request, principal, source=chosen, page=page, notice=notice)


# --- upload --------------------------------------------------------------------------------------------
_FIELDS = ("type", "authority", "publisher", "department", "embed")


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"文件超过上传上限 {_size_label(limit)} file over the upload limit", details={"limit_bytes": limit}
    )


def _upload_file(form: FormData, limit: int) -> UploadFile:
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        raise InvalidInput.for_field("file", "请选择要上传的文件 choose a file", code="file_missing")
    if file.size is not None and file.size > limit:
        raise _too_large(limit)
    return file


def _options(fields: dict[str, str]) -> uploads.UploadOptions:
    try:
        return uploads.UploadOptions(
            doc_type=DocType(fields.get("type") or DocType.guideline.value),
            authority=Authority(fields.get("authority") or Authority.guideline.value),
            publisher=(fields.get("publisher") or "").strip() or None,
            department=(fields.get("department") or "").strip() or None,
            embed=fields.get("embed", "") in ("on", "true", "1"),
        )
    except (ValueError, ValidationError) as error:
        first = error.errors()[0]["msg"] if isinstance(error, ValidationError) else str(error)
        raise InvalidInput.for_field("form", str(first)) from None


@router.post(UPLOAD_PATH)
async def upload_document(request: Request) -> Response:
    """Signed in and allowed are checked before the body is read, and a declared size over the limit is
    refused before it is sent on; the file then goes to disk in pieces and a background task ingests it."""
    principal = await run_in_threadpool(signed_in, request)
    if principal is None:
        # the typed fields wait in the browser's sessionStorage (knowledge.js); the file must be chosen again
        return RedirectResponse("/login?next=/knowledge", status_code=303)
    db = get_db(request)
    settings = get_settings_dep(request)
    limit = settings.kb_upload_max_bytes
    fields: dict[str, str] = {}
    form: FormData | None = None
    try:
        await run_in_threadpool(require, db, principal, Permission.knowledge_manage, "kb.ingest", _MANAGE)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
            raise _too_large(limit)
        form = await request.form(max_files=1, max_fields=len(_FIELDS) + 4)
        fields = {k: v for k in (*_FIELDS, "idempotency_key") if isinstance(v := form.get(k), str)}
        file = _upload_file(form, limit)
        name = uploads.safe_name(file.filename)
        options = _options(fields)
        key = fields.get("idempotency_key") or None
        uploads.check_key(key)  # everything that can be refused is, before the file is written
        root = uploads.root_for(settings.resolved_data_dir)
        received = await run_in_threadpool(uploads.receive, root, file.file, name, limit)
        try:
            kb = await run_in_threadpool(providers(request).knowledge)
        except BaseException:
            uploads.discard(received)  # not a task: the copy must not stay on disk
            raise
        # submit owns the copy from here: it becomes a task, joins one, or is removed
        task = await run_in_threadpool(uploads.submit, root, received, options, principal, kb, db, key)
    except PermissionDenied as error:
        return error_page(request, principal, error)
    except MedFusionError as error:
        shown = error
        return await run_in_threadpool(
            lambda: _page(request, principal, status=shown.status_code, upload_error=shown, form=fields)
        )
    finally:
        if form is not None:
            await form.close()  # the request's spooled file
    return RedirectResponse(f"/knowledge/tasks/{task.id}", status_code=303)


# --- progress ------------------------------------------------------------------------------------------
@router.get("/knowledge/tasks.json")
def tasks_json(request: Request) -> Response:
    principal = signed_in(request)
    if principal is None:
        return JSONResponse({"error": {"code": "authentication_failed", "message": "请重新登录"}}, 401)
    db = get_db(request)
    try:
        _require_view(db, principal, "kb.view")
    except PermissionDenied as error:
        return JSONResponse({"error": error.to_dict()}, error.status_code)
    root = uploads.root_for(get_settings_dep(request).resolved_data_dir)
    return JSONResponse({"tasks": uploads.summary(uploads.tasks(root, limit=10))})


@router.get("/knowledge/tasks/{task_id}", response_class=HTMLResponse)
def task_page(request: Request, task_id: str) -> Response:
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    try:
        _require_view(get_db(request), principal, "kb.view")
        found = uploads.task(uploads.root_for(get_settings_dep(request).resolved_data_dir), task_id)
    except MedFusionError as error:
        return error_page(request, principal, error)
    return render(
        request,
        "knowledge_task.html",
        principal,
        task=found,
        can_manage=principal.may(Permission.knowledge_manage),
        doc_types=library.DOC_TYPE_LABELS,
    )


@router.post("/knowledge/tasks/{task_id}/resume")
def resume_task(request: Request, task_id: str) -> Response:
    principal = signed_in(request)
    if principal is None:
        return RedirectResponse(f"/login?next=/knowledge/tasks/{task_id}", status_code=303)
    db = get_db(request)
    try:
        require(db, principal, Permission.knowledge_manage, "kb.ingest", _MANAGE)
        root = uploads.root_for(get_settings_dep(request).resolved_data_dir)
        uploads.resume(root, task_id, principal, providers(request).knowledge(), db)
    except MedFusionError as error:
        return error_page(request, principal, error)
    return RedirectResponse(f"/knowledge/tasks/{task_id}", status_code=303)


# --- documents and chunks ------------------------------------------------------------------------------
@router.get("/knowledge/documents/{document_id}", response_class=HTMLResponse)
def document_page(
    request: Request, document_id: str, page: Annotated[int, Query(ge=1, le=100_000)] = 1
) -> Response:
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    db = get_db(request)
    try:
        _require_view(db, principal, "kb.view")
        found = library.document(db, document_id)
        chunks, total = library.chunks(db, document_id, page=page, per_page=CHUNKS_PER_PAGE)
    except MedFusionError as error:
        return error_page(request, principal, error)
    return render(
        request,
        "knowledge_document.html",
        principal,
        doc=found,
        chunks=chunks,
        total=total,
        page=page,
        pages=max(1, -(-total // CHUNKS_PER_PAGE)),
        can_manage=principal.may(Permission.knowledge_manage),
        doc_types=library.DOC_TYPE_LABELS,
    )


@router.get("/knowledge/documents/{document_id}/remove", response_class=HTMLResponse)
def confirm_remove(request: Request, document_id: str) -> Response:
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    db = get_db(request)
    try:
        require(db, principal, Permission.knowledge_manage, "kb.delete", _MANAGE)
        found = library.document(db, document_id)
    except MedFusionError as error:
        return error_page(request, principal, error)
    return render(request, "knowledge_remove.html", principal, doc=found, doc_types=library.DOC_TYPE_LABELS)


@router.post("/knowledge/documents/{document_id}/remove")
def remove_document(request: Request, document_id: str) -> Response:
    """The API's DELETE: the document and every chunk no other document uses; audited as ``kb.delete``."""
    principal = signed_in(request)
    if principal is None:
        return RedirectResponse(f"/login?next=/knowledge/documents/{document_id}/remove", status_code=303)
    db = get_db(request)
    try:
        require(db, principal, Permission.knowledge_manage, "kb.delete", _MANAGE)
        found = library.document(db, document_id)
        if not providers(request).knowledge().delete(found.source):
            raise NotFound(f"知识库中没有该文档 not in the knowledge base: {found.source}")
        with db.session() as session:
            audit.record(
                session, principal.actor, "kb.delete", detail={"source": found.source, "surface": "web"}
            )
    except MedFusionError as error:
        return error_page(request, principal, error)
    return RedirectResponse(f"/knowledge?removed={quote(found.title[:200])}", status_code=303)


# --- search --------------------------------------------------------------------------------------------
def _shown_hit(db: Database, hit: Hit, query: str) -> dict[str, Any]:
    return {
        "hit": hit,
        "segments": library.segments(hit.text, library.highlights(hit.text, query)),
        "channels": [
            (label, hit.channels[name]) for name, label in CHANNEL_LABELS.items() if name in hit.channels
        ],
        "page": library.chunk_page(db, hit.citation.document_id, hit.citation.start, CHUNKS_PER_PAGE),
    }


@router.get("/knowledge/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    q: Annotated[str | None, Query(max_length=500)] = None,
    source: Annotated[str | None, Query(max_length=200)] = None,
    doc_type: Annotated[DocType | None, Query(alias="type")] = None,
    k: Annotated[int, Query(ge=1, le=50)] = 10,
    expand: Annotated[bool, Query()] = False,
) -> Response:
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    db = get_db(request)
    try:
        _require_view(db, principal, "kb.search")
        chosen = _source_filter(source)
        query = (q or "").strip()
        hits: list[dict[str, Any]] = []
        if query:
            kb = providers(request).knowledge()
            expansions = synonym_terms(providers(request).graph(), query) if expand else None
            filters = SearchFilters(doc_type=doc_type, source=chosen)
            hits = [
                _shown_hit(db, h, query)
                for h in kb.search(query, k=k, filters=filters, expansions=expansions)
            ]
    except MedFusionError as error:
        return error_page(request, principal, error)
    return render(
        request,
        "knowledge_search.html",
        principal,
        q=query,
        source=chosen,
        doc_type=doc_type.value if doc_type else "",
        k=k,
        expand=expand,
        hits=hits,
        packs=packs.listing(db),
        doc_types=library.DOC_TYPE_LABELS,
    )
