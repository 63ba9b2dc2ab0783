"""审计日志 and 验证中心 — the oversight pages: the audit log with filters (user, action, patient, outcome,
time range in the display zone) and a CSV export (audited as ``audit.export``); the validation center's
runs (start time in the display zone, who started it, suite, target, state, grade) with a form that offers
only the (suite, target) pairs that can run now (:mod:`medfusion.evaluation.availability`; the others are
listed with the reason), and each report rendered inside the app chrome with a way back.

Times are stored in UTC and shown in the display zone with the zone's name (the ``local`` filter); a time
typed into a filter means display-zone time."""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from markupsafe import Markup

from medfusion.apps.deps import database
from medfusion.apps.page_frame import SubmittedForms, error_page, render, signed_in, to_login
from medfusion.errors import InvalidInput, MedFusionError, PermissionDenied
from medfusion.evaluation.availability import Pair, pairs
from medfusion.evaluation.service import (
    EvalRunRequest,
    EvalRunStatus,
    evaluation_report_html,
    evaluation_runs,
    evaluation_status,
    start_run,
)
from medfusion.record.clinical_time import display_zone
from medfusion.store import audit
from medfusion.store.access import Permission, Principal
from medfusion.store.audit_export import csv_lines, entry_time, parse_instant
from medfusion.store.database import Database
from medfusion.store.tokens import require

router = APIRouter(include_in_schema=False)
AUDIT_PAGE = 100
OUTCOMES = {"success": "成功", "denied": "拒绝", "failed": "失败", "not_found": "未找到"}
STATES = {
    "running": ("运行中", "badge-info"),
    "done": ("完成", "badge-ok"),
    "failed": ("失败", "badge-danger"),
}


def _audit_filters(
    user: str | None,
    action: str | None,
    patient_id: str | None,
    outcome: str | None,
    since: str | None,
    until: str | None,
) -> audit.AuditQuery:
    return audit.AuditQuery(
        actor=(user or "").strip() or None,
        action=(action or "").strip() or None,
        patient_id=(patient_id or "").strip() or None,
        outcome=outcome if outcome in OUTCOMES else None,
        since=parse_instant(since, "since"),
        until=parse_instant(until, "until"),
    )


def _allowed(
    db: Database, principal: Principal, permission: Permission, action: str, message: str
) -> MedFusionError | None:
    try:
        require(db, principal, permission, action, message)
    except PermissionDenied as error:
        return error
    return None


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    user: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=60)] = None,
    patient_id: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(max_length=20)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """The newest entries first, filtered; 导出 CSV downloads every matching entry."""
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    db = database(request)
    refused = _allowed(db, principal, Permission.audit_read, "audit.read", "需要审计权限 audit:read required")
    if refused is not None:
        return error_page(request, principal, refused)
    typed = {
        "user": user or "",
        "action": action or "",
        "patient_id": patient_id or "",
        "outcome": outcome or "",
        "since": since or "",
        "until": until or "",
    }
    problem: MedFusionError | None = None
    try:
        q = _audit_filters(user, action, patient_id, outcome, since, until)
    except InvalidInput as error:
        problem, q = error, audit.AuditQuery()
    with db.session() as session:
        entries = [] if problem else audit.search(session, q, limit=AUDIT_PAGE + 1, before_seq=before)
        actions = audit.action_names(session)
        audit.record(
            session,
            principal.actor,
            "audit.read",
            patient_id=q.patient_id,
            detail={"count": min(len(entries), AUDIT_PAGE), "surface": "web", **q.active()},
        )
    more = len(entries) > AUDIT_PAGE
    entries = entries[:AUDIT_PAGE]
    shown = [{"entry": e, "at": entry_time(e), "detail": _detail_text(e.detail)} for e in entries]
    filters = {k: v for k, v in typed.items() if v}
    return render(
        request,
        "audit.html",
        principal,
        status=problem.status_code if problem else 200,
        rows=shown,
        typed=typed,
        actions=actions,
        outcomes=OUTCOMES,
        error=problem,
        zone=display_zone().key,
        export_query=filters,
        older={**filters, "before": entries[-1].seq} if more and entries else None,
        paged=before is not None,
    )


def _detail_text(detail: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(detail.items()))


@router.get("/audit/export")
def audit_export(
    request: Request,
    user: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=60)] = None,
    patient_id: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(max_length=20)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Every entry matching the filters as CSV (UTC and display-zone times), oldest first; audited."""
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    db = database(request)
    refused = _allowed(
        db, principal, Permission.audit_read, "audit.export", "需要审计权限 audit:read required"
    )
    if refused is not None:
        return error_page(request, principal, refused)
    try:
        q = _audit_filters(user, action, patient_id, outcome, since, until)
    except InvalidInput as error:
        return error_page(request, principal, error)
    with db.session() as session:
        total, upto = audit.count(session, q), audit.head_seq(session)
        audit.record(
            session,
            principal.actor,
            "audit.export",
            patient_id=q.patient_id,
            detail={"count": total, "surface": "web", **q.active()},
        )

    def lines() -> Any:
        with db.read_session() as session:
            yield from csv_lines(audit.matching(session, q, upto=upto))

    stamp = datetime.now(display_zone()).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="medfusion-audit-{stamp}.csv"'},
    )


# --- the validation center ------------------------------------------------------------------------------
def _suites(found: list[Pair]) -> list[dict[str, Any]]:
    """Pairs grouped by suite, in registry order, for the form's option groups."""
    groups: dict[str, dict[str, Any]] = {}
    for pair in found:
        group = groups.setdefault(
            pair.suite, {"suite": pair.suite, "description": pair.suite_description, "pairs": []}
        )
        group["pairs"].append(pair)
    return list(groups.values())


def _evaluations(
    request: Request,
    principal: Principal,
    *,
    status: int = 200,
    error: MedFusionError | None = None,
    typed: dict[str, Any] | None = None,
) -> Response:
    found = pairs()
    runnable = [p for p in found if p.runnable]
    runs: list[EvalRunStatus] = evaluation_runs()
    chosen = (typed or {}).get("pair") or (f"{runnable[0].suite}:{runnable[0].target}" if runnable else "")
    return render(
        request,
        "evaluations.html",
        principal,
        status=status,
        runs=runs,
        states=STATES,
        suites=_suites(found),
        runnable=runnable,
        blocked=[p for p in found if not p.runnable],
        chosen=chosen,
        typed=typed or {"limit": 100, "seed": 0},
        form_key=secrets.token_urlsafe(16),
        error=error,
        refresh=any(r.state == "running" for r in runs),
    )


@router.get("/evaluations", response_class=HTMLResponse)
def evaluations_page(request: Request) -> Response:
    """Validation runs (managers, admins), newest first, and the form to start one."""
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    refused = _allowed(
        database(request), principal, Permission.evaluation_run, "eval.list", "评测需要 evaluation:run 权限"
    )
    if refused is not None:
        return error_page(request, principal, refused)
    return _evaluations(request, principal)


_started = SubmittedForms()


@router.post("/evaluations")
def start_evaluation(
    request: Request,
    pair: Annotated[str | None, Form(max_length=90)] = None,
    suite: Annotated[str | None, Form(max_length=40)] = None,
    target: Annotated[str | None, Form(max_length=40)] = None,
    limit: Annotated[int, Form(ge=1, le=100_000)] = 100,
    seed: Annotated[int, Form(ge=0, le=2**31)] = 0,
    form_key: Annotated[str | None, Form(min_length=8, max_length=64)] = None,
) -> Response:
    """Start a run (``pair`` is ``suite:target``; or ``suite`` and ``target``); it goes on in the
    background and appears in the list as 运行中. A pair that cannot run now is refused at once. The
    form's one-time key makes a double click start one run, not two."""
    principal = signed_in(request)
    if principal is None:
        return RedirectResponse("/login?next=/evaluations", status_code=303)
    earlier = _started.get(form_key) if form_key else None
    if earlier is not None:
        return RedirectResponse(earlier, status_code=303)
    if pair:
        suite, _, target = pair.partition(":")
    typed = {"pair": pair or f"{suite}:{target}", "limit": limit, "seed": seed}
    try:
        if not suite or not target:
            raise InvalidInput.for_field("pair", "请选择评测集与目标 choose a suite and a target")
        start_run(
            database(request), principal, EvalRunRequest(suite=suite, target=target, limit=limit, seed=seed)
        )
    except PermissionDenied as error:
        return error_page(request, principal, error)
    except MedFusionError as error:
        return _evaluations(request, principal, status=error.status_code, error=error, typed=typed)
    if form_key:
        _started.put(form_key, "/evaluations")
    return RedirectResponse("/evaluations", status_code=303)


_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S)


def report_fragment(page: str) -> Markup | None:
    """The report page's body (our own generator's escaped HTML: tables and inline SVG, no script), to show
    inside the chrome; ``None`` if it holds anything else (then only the standalone page is linked)."""
    found = _BODY.search(page)
    if found is None or re.search(r"<(script|iframe|object|embed|link|style)\b", found.group(1), re.I):
        return None
    return Markup(re.sub(r"<h1>.*?</h1>", "", found.group(1), count=1, flags=re.S))


@router.get("/evaluations/{run_id}", response_class=HTMLResponse)
def evaluation_report(request: Request, run_id: str) -> Response:
    """A run's report inside the app chrome, with its start, user and state, and a way back."""
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    db = database(request)
    try:
        require(db, principal, Permission.evaluation_run, "eval.report", "评测需要 evaluation:run 权限")
        run = evaluation_status(db, principal, run_id)
        page = evaluation_report_html(run_id)
    except MedFusionError as error:
        return error_page(request, principal, error)
    return render(
        request,
        "evaluation_report.html",
        principal,
        run=run.model_copy(update={"results": None}),
        states=STATES,
        report=report_fragment(page),
    )


@router.get("/evaluations/{run_id}/report.html", response_class=HTMLResponse)
def evaluation_report_standalone(request: Request, run_id: str) -> Response:
    """The self-contained report file, as written (to save or print)."""
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    db = database(request)
    try:
        require(db, principal, Permission.evaluation_run, "eval.report", "评测需要 evaluation:run 权限")
        page = evaluation_report_html(run_id)
    except MedFusionError as error:
        return error_page(request, principal, error)
    return HTMLResponse(page)
