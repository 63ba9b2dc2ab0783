"""Web pages: login, the role landings, patient search, the patient chart, drafts — each through the same
services, permissions and audit as the API (the administration, audit-log / validation-center and
pharmacist pages live in ``admin_pages``, ``oversight_pages`` and ``pharmacy_pages``).
The session is the API's own token in an HttpOnly, SameSite=Strict cookie, so the browser never sees it
in script and other sites cannot ride on it."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Path, Query, Request
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
from medfusion.feedback.service import Action, FeedbackEntry, FeedbackRequest, FeedbackService
from medfusion.privacy.service import tag_identifiers
from medfusion.record.models import SEX_LABELS
from medfusion.store.access import Permission, Principal, Role
from medfusion.store.display import shown_chart
from medfusion.store.patient_service import PatientService
from medfusion.store.patients import PatientFilters
from medfusion.store.tokens import Credentials, sign_in
from medfusion.web.chart_view import chart_actions, chart_view
from medfusion.web.draft_review import SAFETY_SENTENCE, Confirmation, confirmation, draft_view

router = APIRouter(include_in_schema=False)
# what a reviewer is told when a form lacks what its action needs
FEEDBACK_HINTS = {
    Action.edit: "保存修改需要填写修改后的草稿 the edited text is required",
    Action.reject: "驳回需要填写原因 a rejection needs its reason",
}


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
    # a temporary password (an administrator's reset) allows nothing but choosing a new one
    target = (
        "/account/password?" + urlencode({"next": safe_next(next)})
        if token.must_change_password
        else safe_next(next)
    )
    response = RedirectResponse(target, status_code=303)
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


# Where each role lands: the page made for its work (issue 16). A patient lands on their own record.
LANDING = {
    Role.doctor: "/patients",
    Role.nurse: "/patients",
    Role.pharmacist: "/pharmacy",  # patient search with the medication review beside it
    Role.manager: "/evaluations",
    Role.public_health: "/patients",  # lists and charts de-identified by the display policy
    Role.auditor: "/audit",
    Role.admin: "/admin",
}


@router.get("/")
def home(request: Request) -> Response:
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    if principal.must_change_password:
        return RedirectResponse("/account/password", status_code=303)
    if principal.confined() and principal.patient_id:
        return RedirectResponse(f"/patients/{principal.patient_id}", status_code=303)
    landing = LANDING.get(Role(principal.role)) if principal.role in Role.__members__ else None
    if landing is not None:
        return RedirectResponse(landing, status_code=303)
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
    return render(
        request,
        "chart.html",
        principal,
        can_reveal=can_reveal,
        ai_actions=chart_actions(principal, patient_id),
        **chart_view(shown),
    )


def _drafts(
    request: Request,
    principal: Principal,
    *,
    notice: Confirmation | None = None,
    missing: str | None = None,
    problem: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    try:
        runs = pending_runs(get_db(request), principal)
    except MedFusionError as error:
        return error_page(request, principal, error)
    return render(
        request,
        "drafts.html",
        principal,
        status=status,
        drafts=[draft_view(r) for r in runs],
        notice=notice,
        missing=missing,
        problem=problem or {},
        safety=SAFETY_SENTENCE,
    )


@router.get("/drafts", response_class=HTMLResponse)
def drafts_page(
    request: Request,
    done: Annotated[str | None, Query(max_length=36)] = None,
    action: Annotated[Action | None, Query()] = None,
) -> Response:
    """Drafts waiting for a clinician: accept, edit or reject each (the feedback loop). ``?done=<run id>``
    (where a review redirects) adds what that review did and where the document went."""
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    notice = None
    if done:
        try:
            entries = FeedbackService(get_db(request), principal).entries(run_id=done, limit=1)
        except MedFusionError as error:
            return error_page(request, principal, error)
        notice = confirmation(entries[0], principal.username, action) if entries else None
    return _drafts(request, principal, notice=notice, missing=done if done and notice is None else None)


def _same_review(entry: FeedbackEntry, principal: Principal, feedback: FeedbackRequest) -> bool:
    mine = (principal.username, feedback.action, feedback.edited, feedback.reason)
    return (entry.username, entry.action, entry.edited, entry.reason) == mine


@router.post("/drafts/{run_id}")
def review_draft(
    request: Request,
    run_id: Annotated[str, Path(max_length=36)],
    action: Annotated[Action, Form()],
    edited: Annotated[str | None, Form(max_length=20_000)] = None,
    reason: Annotated[str | None, Form(max_length=2_000)] = None,
) -> Response:
    """Accept, edit or reject; then back to the list with a confirmation. A resent form (double submit) gets
    the same confirmation and records nothing twice (``FeedbackService`` returns the first act); a draft
    someone else reviewed meanwhile is not reviewed again from this page — the page says who did what. A
    session that expired mid-form goes to sign-in and back to the draft; the page's script keeps the typed
    text in sessionStorage and puts it back."""
    principal = signed_in(request)
    if principal is None:
        return RedirectResponse(f"/login?next={quote(f'/drafts#run-{run_id}')}", status_code=303)
    try:
        feedback = FeedbackRequest(run_id=run_id, action=action, edited=edited or None, reason=reason or None)
    except ValidationError as error:
        message = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors())
        problem = {
            "run_id": run_id,
            "error": InvalidInput.for_field("feedback", FEEDBACK_HINTS.get(action, message)),
            "action": action.value,
            "edited": edited,
            "reason": reason,
        }
        return _drafts(request, principal, problem=problem, status=422)
    service = FeedbackService(get_db(request), principal)
    try:
        previous = service.entries(run_id=run_id, limit=1)
        if previous and not _same_review(previous[0], principal, feedback):
            query = urlencode({"done": run_id, "action": previous[0].action.value})
            return RedirectResponse(f"/drafts?{query}#done", status_code=303)
        service.record(feedback)
    except MedFusionError as error:
        return error_page(request, principal, error)
    query = urlencode({"done": run_id, "action": action.value})
    return RedirectResponse(f"/drafts?{query}#done", status_code=303)
