"""Web pages: login, patient search, the patient chart, the audit log — each through the same services,
permissions and audit as the API. The session is the API's own token in an HttpOnly, SameSite=Strict cookie,
so the browser never sees it in script and other sites cannot ride on it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from medfusion.agents.runs import pending_runs
from medfusion.apps.deps import database as get_db
from medfusion.apps.deps import settings as get_settings_dep
from medfusion.apps.page_frame import COOKIE, error_page, render, safe_next, signed_in, to_login
from medfusion.errors import (
    AccountLocked,
    AuthenticationFailed,
    InvalidInput,
    MedFusionError,
    PermissionDenied,
)
from medfusion.evaluation.registry import targets
from medfusion.evaluation.service import EvalRunRequest, evaluation_report_html, evaluation_runs, start_run
from medfusion.evaluation.suites import SUITES
from medfusion.feedback.service import Action, FeedbackRequest, FeedbackService
from medfusion.privacy.service import tag_identifiers
from medfusion.record.clinical_time import SHANGHAI, sort_time
from medfusion.record.models import SEX_LABELS, EncounterClass, ObservationCategory, PatientChart
from medfusion.store import audit
from medfusion.store.access import Permission
from medfusion.store.display import ShownChart, shown_chart
from medfusion.store.patient_service import PatientService
from medfusion.store.patients import PatientFilters
from medfusion.store.tokens import Credentials, require, sign_in
from medfusion.web.vitals_chart import vitals_svg

router = APIRouter(include_in_schema=False)
CLASS_LABELS = {
    EncounterClass.outpatient: "门诊",
    EncounterClass.inpatient: "住院",
    EncounterClass.emergency: "急诊",
}
FLAG_LABELS = {"H": "偏高 ↑", "L": "偏低 ↓", "HH": "危急高 ↑↑", "LL": "危急低 ↓↓", "A": "异常", "N": ""}


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", None, next=safe_next(next))


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form()] = "/",
) -> Response:
    settings = get_settings_dep(request)
    try:
        token = sign_in(get_db(request), settings, Credentials(username=username, password=password))
    except (AuthenticationFailed, AccountLocked) as error:
        return render(
            request,
            "login.html",
            None,
            status=error.status_code,
            next=safe_next(next),
            message=error.message,
            username=username,
        )
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        token.access_token,
        max_age=token.expires_in,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/")
def home(request: Request) -> Response:
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    if principal.confined() and principal.patient_id:
        return RedirectResponse(f"/patients/{principal.patient_id}", status_code=303)
    if principal.may(Permission.patient_search):
        return RedirectResponse("/patients", status_code=303)
    if principal.may(Permission.audit_read):
        return RedirectResponse("/audit", status_code=303)
    return error_page(
        request, principal, PermissionDenied("此角色没有可用的页面 nothing to show for this role")
    )


@router.get("/patients", response_class=HTMLResponse)
def patient_search(
    request: Request,
    name: Annotated[str | None, Query(max_length=64)] = None,
    id_number: Annotated[str | None, Query(max_length=18)] = None,
    department: Annotated[str | None, Query(max_length=200)] = None,
    diagnosis_code: Annotated[str | None, Query(max_length=40)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    filters = PatientFilters(
        name=name or None,
        id_number=id_number or None,
        department=department or None,
        diagnosis_code=diagnosis_code or None,
    )
    per_page = 25
    try:
        results = PatientService(get_db(request), principal).search(
            filters, limit=per_page, offset=(page - 1) * per_page
        )
    except MedFusionError as error:
        return error_page(request, principal, error)
    return render(
        request,
        "patients.html",
        principal,
        filters=filters,
        results=results,
        page=page,
        per_page=per_page,
        sex_labels=SEX_LABELS,
        can_read=principal.may(Permission.patient_read),
    )


MED_STATUS = {
    "active": "在用",
    "completed": "已完成",
    "stopped": "已停用",
    "on-hold": "暂停",
    "cancelled": "已取消",
}


@dataclass
class DiagnosisLine:
    code: str
    name: str
    first: datetime | None
    last: datetime | None
    visits: int
    primary: bool


def diagnosis_summary(chart: PatientChart | ShownChart) -> list[DiagnosisLine]:
    """One line per ICD-10 code (a problem list), most recently recorded first."""
    lines: dict[str, DiagnosisLine] = {}
    for c in chart.conditions:
        line = lines.setdefault(c.code_label, DiagnosisLine(c.code_label, c.label, None, None, 0, False))
        line.visits += 1
        line.primary = line.primary or c.role.value == "primary"
        if c.recorded_at:
            line.first = c.recorded_at if line.first is None else min(line.first, c.recorded_at)
            line.last = c.recorded_at if line.last is None else max(line.last, c.recorded_at)
    floor = datetime.min.replace(tzinfo=SHANGHAI)
    return sorted(lines.values(), key=lambda d: d.last or floor, reverse=True)


def chart_view(chart: PatientChart | ShownChart) -> dict[str, Any]:
    """Everything the chart page shows, newest first, with abnormal results marked."""
    encounters = {e.id: e for e in chart.encounters}
    labs = sorted(
        (o for o in chart.observations if o.category is ObservationCategory.laboratory),
        key=lambda o: sort_time(o.effective_at),
        reverse=True,
    )
    vitals = [o for o in chart.observations if o.category is ObservationCategory.vital_signs]
    return {
        "chart": chart,
        "patient": chart.patient,
        "sex": SEX_LABELS[chart.patient.sex],
        "encounters": sorted(chart.encounters, key=lambda e: sort_time(e.admitted_at), reverse=True),
        "class_labels": CLASS_LABELS,
        "diagnoses": diagnosis_summary(chart),
        "encounter_of": encounters,
        "med_status": MED_STATUS,
        "labs": labs,
        "abnormal_count": sum(o.is_abnormal for o in labs),
        "flag_labels": FLAG_LABELS,
        "vitals_svg": vitals_svg(vitals),
        "latest_vitals": sorted(vitals, key=lambda o: sort_time(o.effective_at), reverse=True)[:9],
        "medications": sorted(chart.medications, key=lambda m: sort_time(m.start), reverse=True),
        "notes": sorted(chart.notes, key=lambda n: n.written_at, reverse=True),
    }


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_chart(
    request: Request,
    patient_id: str,
    reveal: Annotated[Literal["identifiers"] | None, Query()] = None,
    reason: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Identifiers as the display policy shows them to this role; 显示完整信息 is an audited reveal."""
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    db = get_db(request)
    try:
        chart = PatientService(db, principal).chart(patient_id)
        shown = shown_chart(
            db,
            principal,
            chart,
            reveal=reveal is not None,
            reason=reason or None,
            surface="web",
            redact=tag_identifiers,
        )
    except MedFusionError as error:
        return error_page(request, principal, error)
    can_reveal = bool(shown.patient.masked) and principal.may(Permission.identifier_reveal)
    return render(request, "chart.html", principal, can_reveal=can_reveal, **chart_view(shown))


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, patient_id: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    db = get_db(request)
    try:
        require(db, principal, Permission.audit_read, "audit.read", "需要审计权限 audit:read required")
    except PermissionDenied as error:
        return error_page(request, principal, error)
    with db.session() as session:
        entries = audit.latest(session, patient_id=patient_id or None, limit=200)
        audit.record(
            session,
            principal.actor,
            "audit.read",
            patient_id=patient_id or None,
            detail={"count": len(entries), "surface": "web"},
        )
    return render(request, "audit.html", principal, entries=entries, patient_id=patient_id)


_AGENT_LABELS = {"ask": "问答", "consult": "口袋主任医师", "mdt": "多学科会诊"}


@router.get("/drafts", response_class=HTMLResponse)
def drafts_page(request: Request) -> Response:
    """Drafts waiting for a clinician: accept, edit or reject each (the feedback loop)."""
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    try:
        runs = pending_runs(get_db(request), principal)
    except MedFusionError as error:
        return error_page(request, principal, error)
    return render(request, "drafts.html", principal, runs=runs, labels=_AGENT_LABELS)


@router.post("/drafts/{run_id}")
def review_draft(
    request: Request,
    run_id: str,
    action: Annotated[Action, Form()],
    edited: Annotated[str | None, Form(max_length=20_000)] = None,
    reason: Annotated[str | None, Form(max_length=2_000)] = None,
) -> Response:
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    try:
        feedback = FeedbackRequest(run_id=run_id, action=action, edited=edited or None, reason=reason or None)
        FeedbackService(get_db(request), principal).record(feedback)
    except ValidationError as error:
        message = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors())
        return error_page(request, principal, InvalidInput.for_field("feedback", message))
    except MedFusionError as error:
        return error_page(request, principal, error)
    return RedirectResponse("/drafts", status_code=303)


@router.get("/evaluations", response_class=HTMLResponse)
def evaluations_page(request: Request) -> Response:
    """Validation runs (managers, admins): state and grade, each linking to its report."""
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    db = get_db(request)
    try:
        require(db, principal, Permission.evaluation_run, "eval.list", "评测需要 evaluation:run 权限")
    except PermissionDenied as error:
        return error_page(request, principal, error)
    landed = [name for name, suite in SUITES.items() if suite.landed]
    return render(
        request, "evaluations.html", principal, runs=evaluation_runs(), suites=landed, targets=targets()
    )


@router.post("/evaluations")
def start_evaluation(
    request: Request,
    suite: Annotated[str, Form(max_length=40)],
    target: Annotated[str, Form(max_length=40)],
    limit: Annotated[int, Form(ge=1, le=100_000)] = 100,
    seed: Annotated[int, Form(ge=0, le=2**31)] = 0,
) -> Response:
    """Start a run from the page; it goes on in the background and appears in the list as 运行中."""
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    try:
        start_run(
            get_db(request), principal, EvalRunRequest(suite=suite, target=target, limit=limit, seed=seed)
        )
    except MedFusionError as error:
        return error_page(request, principal, error)
    return RedirectResponse("/evaluations", status_code=303)


@router.get("/evaluations/{run_id}", response_class=HTMLResponse)
def evaluation_report(request: Request, run_id: str) -> Response:
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    db = get_db(request)
    try:
        require(db, principal, Permission.evaluation_run, "eval.report", "评测需要 evaluation:run 权限")
        page = evaluation_report_html(run_id)
    except MedFusionError as error:
        return error_page(request, principal, error)
    return HTMLResponse(page)
