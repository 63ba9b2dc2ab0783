"""The MDT page (``/mdt``): start a multi-disciplinary consultation from a chart or a pasted case, choose the
specialties or let the case pick them, watch the specialties answer, then read the minutes, the weighted
consensus and the drug conflicts, download the minutes as a Word document, and confirm in 待审草稿. It runs
the same :class:`~medfusion.apps.mdt.service.MdtService` as ``POST /api/mdt`` (same permission check,
guardrails, stored run and audit).

- ``GET /mdt`` — the form; ``?patient_id=`` starts from a chart (read through the audited patient service;
  the page previews the case and the team the case would call).
- ``POST /mdt`` — checks the input and reads the chart (errors come back on the form), then runs the
  consultation in a background thread with a progress record (:mod:`medfusion.apps.mdt.progress`) and
  redirects to it. The form's one-time key is the record's id, so a repeated submission lands on the same
  run instead of starting another.
- ``GET /mdt/runs/{key}`` — the run: while it goes on, each specialty as it answers (the page's script polls
  ``?partial=1`` for that section; without script a ``<meta refresh>`` reloads it); once stored, the result.
- ``GET /mdt/runs/{key}/minutes.docx`` — the minutes as .docx (patient shown as the reader's role may see
  them; the export is audited).

A session that expires while typing: the page's script keeps the draft in ``sessionStorage`` and puts it
back after signing in again."""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from medfusion.agents.runs import StoredRun, stored_run
from medfusion.apps.assistive import STATUS_LABELS, OutputView, linked_markdown, output_view
from medfusion.apps.deps import providers
from medfusion.apps.mdt import case as cases
from medfusion.apps.mdt import pool
from medfusion.apps.mdt.minutes import PATH_LABELS, age_text, sex_text
from medfusion.apps.mdt.minutes_docx import minutes_docx
from medfusion.apps.mdt.models import MdtCase, MdtRequest, MdtResult
from medfusion.apps.mdt.progress import Progress, ProgressBook, Recorder, Source
from medfusion.apps.mdt.service import MdtService
from medfusion.apps.page_frame import error_page, local_time, render, signed_in, to_login
from medfusion.errors import InvalidInput, MedFusionError, NotFound, PermissionDenied
from medfusion.graph.conflicts import ConflictChecker
from medfusion.record.models import PatientChart
from medfusion.store import audit
from medfusion.store.access import Permission, Principal
from medfusion.store.display import mask_name, shown_patient
from medfusion.store.patient_service import PatientService

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
FORM_PAGE = "mdt/templates/mdt.html"
RUN_PAGE = "mdt/templates/mdt_run.html"
PROGRESS = "mdt/templates/_progress.html"
DENIED = "会诊面向临床医护人员 MDT is for clinicians"  # the API's wording (apps/mdt/api.py)
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_LIST = re.compile(r"[,，、;；\s]+")
_FOCUS = {
    "treatment": "治疗",
    "drugs": "用药",
    "checks": "检查",
    "imaging": "影像检查",
    "tissue": "病理与分子检测",
    "lifestyle": "营养与生活方式",
    "conflicts": "用药冲突审核",
}
_log = logging.getLogger(__name__)


@dataclass
class MdtForm:
    """What the form shows: as typed (kept through errors)."""

    source: str = "case"  # chart | case
    patient_id: str = ""
    case: str = ""
    question: str = ""
    proposed_drugs: str = ""
    specialties: list[str] = field(default_factory=list)
    key: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class Specialty:
    key: str
    label: str
    focus: str


@dataclass
class Preview:
    """The chart's case as the MDT will read it, and the team it would call."""

    id: str
    name: str
    case: MdtCase
    team: list[tuple[str, str]]  # (label, why)
    routing: str
    conflicts: int


def _require(request: Request, principal: Principal) -> None:
    """The API's audited permission check (denied: audit entry, then 403)."""
    providers(request).require(principal, Permission.draft_review, "mdt", DENIED)


def _specialties() -> list[Specialty]:
    return [
        Specialty(
            key,
            spec["label"],
            "、".join(_FOCUS[f] for f in spec.get("focus", ("treatment", "drugs", "checks"))),
        )
        for key, spec in pool.pool().items()
    ]


def _book(request: Request) -> ProgressBook:
    return ProgressBook(providers(request).settings.resolved_data_dir / "mdt" / "runs")


def _service(request: Request, principal: Principal) -> MdtService:
    found = providers(request)
    return MdtService(found.db, principal, found.general(), found.knowledge(), found.graph())


def _preview(request: Request, chart: PatientChart) -> Preview:
    case = cases.from_chart(chart)
    report = ConflictChecker(providers(request).graph()).check_chart(chart, [], [])
    team, routing, _ = pool.select(case, len(report.conflicts), [])
    labels = pool.pool()
    return Preview(
        id=chart.patient.id,
        name=mask_name(chart.patient.name) or "（未登记姓名）",
        case=case,
        team=[(labels[k]["label"], why) for k, why in team.items()],
        routing=routing,
        conflicts=len(report.conflicts),
    )


def _form_page(
    request: Request,
    principal: Principal,
    form: MdtForm,
    *,
    preview: Preview | None = None,
    error: MedFusionError | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        FORM_PAGE,
        principal,
        status=status,
        form=form,
        preview=preview,
        error=error,
        specialties=_specialties(),
        example=_example(),
        sex_text=sex_text,
        age_text=age_text,
        can_name_patient=principal.may(Permission.patient_read),
    )


def _example() -> str:
    """A pasted case to try (the AF + diabetes + CKD case the app's API example sends as a Bundle)."""
    return (
        "68岁男性。诊断：心房颤动，2型糖尿病，慢性肾脏病3期。在用华法林、二甲双胍。青霉素过敏。"
        "因膝关节疼痛拟加用布洛芬。"
    )


@router.get("/mdt", response_class=HTMLResponse)
def mdt_page(
    request: Request,
    patient_id: Annotated[str | None, Query(max_length=64)] = None,
    case: Annotated[str | None, Query(max_length=4000)] = None,
) -> Response:
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    form = MdtForm(
        source="chart" if patient_id else "case", patient_id=(patient_id or "").strip(), case=case or ""
    )
    try:
        _require(request, principal)
        preview = None
        if form.patient_id:
            chart = PatientService(providers(request).db, principal).chart(form.patient_id)
            preview = _preview(request, chart)
    except PermissionDenied as error:
        return error_page(request, principal, error)
    except MedFusionError as error:
        return _form_page(request, principal, form, error=error, status=error.status_code)
    return _form_page(request, principal, form, preview=preview)


def _request_of(form: MdtForm) -> tuple[MdtRequest, Source]:
    """The form as the API's request: a chart by id, a pasted FHIR Bundle (JSON) or a pasted case text."""
    body: dict[str, Any] = {
        "question": form.question.strip(),
        "proposed_drugs": [d for d in _LIST.split(form.proposed_drugs) if d],
        "specialties": form.specialties,
    }
    source: Source
    if form.source == "chart":
        body["patient_id"], source = form.patient_id.strip() or None, "chart"
        if not body["patient_id"]:
            raise InvalidInput.for_field("patient_id", "请选择患者或改为粘贴病例", code="no_patient")
    elif form.case.lstrip().startswith("{"):
        try:
            body["bundle"], source = json.loads(form.case), "bundle"
        except json.JSONDecodeError as error:
            raise InvalidInput.for_field(
                "case",
                f"粘贴的 FHIR Bundle 不是合法的 JSON：{error.msg}（第 {error.lineno} 行）",
                code="bad_json",
            ) from None
    else:
        body["case"], source = form.case.strip(), "case"
    try:
        return MdtRequest.model_validate(body), source
    except ValidationError as error:
        problems = [(".".join(str(p) for p in e["loc"]) or "form", str(e["msg"])) for e in error.errors()]
        message = "；".join(f"{name}: {msg.removeprefix('Value error, ')}" for name, msg in problems)
        raise InvalidInput(
            f"会诊未提交：{message}", details=[{"field": f, "message": m} for f, m in problems]
        ) from error


def _start(service: MdtService, chart: PatientChart, request: MdtRequest, recorder: Recorder) -> None:
    """The consultation in a background thread (as the validation center runs its evaluations)."""

    def work() -> None:
        try:
            result = service.consult_chart(chart, request, progress=recorder)
        except MedFusionError as error:
            recorder.failed(error.code, error.message)
        except Exception:  # recorded for the page; the server keeps serving
            _log.exception("MDT run failed")
            recorder.failed("mdt_failed", "会诊意外中断（已记录日志），请重试")
        else:
            recorder.done(result.run_id, result.status.value)

    threading.Thread(target=work, name=f"mdt-{recorder.record.id[:8]}", daemon=True).start()


def _to_login_keeping(form: MdtForm) -> RedirectResponse:
    """Back to this form (with its chart) after signing in; the script restores what was typed."""
    target = "/mdt" + (f"?{urlencode({'patient_id': form.patient_id})}" if form.source == "chart" else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


@router.post("/mdt", response_class=HTMLResponse)
def mdt_submit(
    request: Request,
    source: Annotated[str, Form(max_length=10)] = "case",
    patient_id: Annotated[str, Form(max_length=200)] = "",
    case: Annotated[str, Form(max_length=400_000)] = "",
    question: Annotated[str, Form(max_length=4000)] = "",
    proposed_drugs: Annotated[str, Form(max_length=2000)] = "",
    specialties: Annotated[list[str] | None, Form(max_length=40)] = None,
    form_key: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    form = MdtForm(
        source="chart" if source == "chart" else "case",
        patient_id=patient_id.strip(),
        case=case,
        question=question,
        proposed_drugs=proposed_drugs,
        specialties=list(dict.fromkeys(specialties or [])),
        key=form_key,
    )
    principal = signed_in(request)
    if principal is None:
        return _to_login_keeping(form)
    try:
        _require(request, principal)
    except PermissionDenied as error:
        return error_page(request, principal, error)
    try:
        book = _book(request)
        book.read(form.key, principal.username)  # a repeated submission: its run, not a second one
        return RedirectResponse(f"/mdt/runs/{form.key}", status_code=303)
    except NotFound:
        pass
    except MedFusionError as error:
        return _form_page(request, principal, form, error=error, status=error.status_code)
    try:
        mdt, kind = _request_of(form)
        service = _service(request, principal)
        chart, mdt = service.prepare(mdt)  # the chart read (audited) and the input checked, before the run
        record, first = book.create(form.key, principal.username, kind, mdt.patient_id)
    except MedFusionError as error:
        preview = _preview_or_none(request, principal, form)
        return _form_page(request, principal, form, preview=preview, error=error, status=error.status_code)
    if first:
        _start(service, chart, mdt, Recorder(book, record))
    return RedirectResponse(f"/mdt/runs/{form.key}", status_code=303)


def _preview_or_none(request: Request, principal: Principal, form: MdtForm) -> Preview | None:
    """The chart's preview for a form shown again with an error (none when the chart itself failed)."""
    if form.source != "chart" or not form.patient_id:
        return None
    try:
        return _preview(request, PatientService(providers(request).db, principal).chart(form.patient_id))
    except MedFusionError:
        return None


@dataclass
class RunView:
    """A run as the page shows it: its progress, and once stored its result."""

    progress: Progress
    result: MdtResult | None = None
    view: OutputView | None = None
    stored: StoredRun | None = None
    patient: str | None = None


def _stored(request: Request, principal: Principal, run_id: str) -> tuple[StoredRun, MdtResult]:
    stored = stored_run(providers(request).db, principal, run_id)
    if stored.agent != "mdt":
        raise NotFound(f"没有这次会诊 no MDT run {run_id}")
    return stored, MdtResult.model_validate(stored.result)


def _patient_name(request: Request, principal: Principal, progress: Progress, *, per_role: bool) -> str:
    """Who the minutes are about: the stored patient by name (masked, or as the role's view shows it),
    or where a pasted case came from."""
    if progress.patient_id:
        db = providers(request).db
        patient = PatientService(db, principal).get(progress.patient_id)
        name = (
            shown_patient(db, principal, patient, surface="web").name if per_role else mask_name(patient.name)
        )
        return name or "（未登记姓名）"
    return "粘贴的 FHIR 病例（未入库）" if progress.source == "bundle" else "粘贴的病例摘要（未入库）"


@router.get("/mdt/runs/{key}", response_class=HTMLResponse)
def mdt_run(request: Request, key: str, partial: Annotated[bool, Query()] = False) -> Response:
    """The run; ``partial``: the progress section only, for the page's script."""
    principal = signed_in(request)
    if principal is None:
        if partial:
            return HTMLResponse('<div id="mdt-progress" data-state="expired"></div>', status_code=401)
        return to_login(request)
    try:
        _require(request, principal)
        progress = _book(request).read(key, principal.username)
        run = RunView(progress)
        if progress.state == "done" and progress.run_id and not partial:
            run.stored, run.result = _stored(request, principal, progress.run_id)
            run.view = output_view(run.result, run.stored.status)
            try:
                run.patient = _patient_name(request, principal, progress, per_role=False)
            except MedFusionError:
                run.patient = None
    except PermissionDenied as error:
        return error_page(request, principal, error)
    except MedFusionError as error:
        if partial:
            return HTMLResponse(
                f'<div id="mdt-progress" data-state="gone">{error.code}</div>', error.status_code
            )
        return error_page(request, principal, error)
    context: dict[str, Any] = {
        "run": run,
        "p": progress,
        "labels": pool.pool(),
        "path_labels": PATH_LABELS,
        "status_labels": STATUS_LABELS,
    }
    if partial:
        return render(request, PROGRESS, principal, **context)
    result = run.result
    return render(
        request,
        RUN_PAGE,
        principal,
        **context,
        result=result,
        view=run.view,
        minutes_html=linked_markdown(result.minutes) if result else None,
        confirm_href=f"/drafts#run-{result.run_id}" if result else "/drafts",
        sex_text=sex_text,
        age_text=age_text,
    )


@router.get("/mdt/runs/{key}/minutes.docx")
def mdt_minutes_docx(request: Request, key: str) -> Response:
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    try:
        _require(request, principal)
        progress = _book(request).read(key, principal.username)
        if progress.state != "done" or not progress.run_id:
            raise NotFound("会诊尚未完成，纪要还不能下载 the minutes are not ready")
        stored, result = _stored(request, principal, progress.run_id)
        patient = _patient_name(request, principal, progress, per_role=True)
    except PermissionDenied as error:
        return error_page(request, principal, error)
    except MedFusionError as error:
        return error_page(request, principal, error)
    status = STATUS_LABELS.get(stored.status, stored.status)
    content = minutes_docx(result, patient, status, local_time(stored.at))
    with providers(request).db.session() as session:
        audit.record(
            session,
            principal.actor,
            "mdt.minutes.export",
            audit.Outcome.success,
            patient_id=stored.patient_id,
            detail={"run_id": stored.run_id, "format": "docx", "surface": "web"},
        )
    filename = f"多学科会诊纪要-{stored.run_id[:8]}.docx"
    return Response(
        content,
        media_type=DOCX,
        headers={
            "Content-Disposition": f'attachment; filename="mdt-minutes-{stored.run_id[:8]}.docx"; '
            f"filename*=UTF-8''{quote(filename)}"
        },
    )
