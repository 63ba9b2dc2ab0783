"""The 会诊 page (``/consult``): a clinician describes a case — typed or pasted, or started from a chart — and
reads the pocket chief physician's answer as a clinician would: red flags first, the differential with its
reasons and evidence, the checks that would discriminate, treatment and drug ideas with their cautions, the
path that produced it, every warning, the evidence list, and the status 待医生确认 with a link to confirm it
in 待审草稿. It runs the same :class:`~medfusion.apps.consult.service.ConsultService` as ``POST /api/consult``
(same permission check, guardrails, stored run and audit).

- ``GET /consult`` — the form; ``?patient_id=`` starts from a chart (read through the audited patient
  service: its active diagnoses, allergies and medications are the consult's patient context, as the API
  does with a patient id; the latest note's 主诉/现病史/查体/辅助检查 fill the case, the patient's name
  replaced by 患者); ``?case=`` / ``?level=`` fill the form (the app's examples link here).
- ``POST /consult`` — runs the consult and redirects to its result (a reload never re-runs it). A hidden
  one-time key makes a repeated submission land on the first one's result
  (:mod:`medfusion.apps.consult.submissions`); the page's script also disables the button once sent.
- ``GET /consult/runs/{run_id}`` — a stored consult run (the asker's own), with its current status.

A session that expires while typing: the page's script keeps the draft in ``sessionStorage`` and puts it
back after signing in again (the sign-in returns to the same form, chart included)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from medfusion.agents.runs import stored_run
from medfusion.apps import registry
from medfusion.apps.assistive import OutputView, Piece, cited_text, linked_markdown, output_view
from medfusion.apps.consult.models import ConsultRequest, ConsultResult, Hypothesis, Level
from medfusion.apps.consult.service import ConsultService
from medfusion.apps.consult.submissions import Submissions
from medfusion.apps.deps import providers
from medfusion.apps.page_frame import error_page, render, signed_in, to_login
from medfusion.contract import AnswerSentence
from medfusion.errors import InvalidInput, MedFusionError, NotFound, PermissionDenied
from medfusion.record.clinical_time import age_on, today_local
from medfusion.record.models import SEX_LABELS, ConditionStatus, MedicationStatus, Patient, PatientChart
from medfusion.store.access import Permission, Principal
from medfusion.store.display import mask_name
from medfusion.store.patient_service import PatientService

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
FORM_PAGE = "consult/templates/consult.html"
RESULT_PAGE = "consult/templates/consult_result.html"
DENIED = "会诊建议面向临床医护人员 consults are for clinicians"  # the API's wording (apps/consult/api.py)
LEVELS: tuple[tuple[Level, str], ...] = (
    ("junior", "住院医师版：逐条讲清支持点、反对点与危险信号"),
    ("attending", "主治医师版：要点式"),
    ("senior", "副主任/主任医师版：只讲关键分歧"),
)
REPEAT_WAIT_SECONDS = 60.0  # how long a repeated submission waits for the first one's result
_NOTE_SECTIONS = ("主诉", "现病史", "体格检查", "辅助检查")
_ACTIVE = {ConditionStatus.active, ConditionStatus.recurrence, ConditionStatus.relapse}


@dataclass
class ConsultForm:
    """What the form shows: as typed (kept through errors)."""

    case: str = ""
    patient_id: str = ""
    level: str = "attending"
    key: str = field(default_factory=lambda: uuid.uuid4().hex)  # one per rendering: a new submission


@dataclass
class ChartContext:
    """The chart a consult starts from: masked name (minimum necessary) and what the consult reads of it."""

    id: str
    name: str
    sex: str
    age: int | None
    conditions: list[str] = field(default_factory=list)
    allergies: list[str] = field(default_factory=list)
    medications: list[str] = field(default_factory=list)


@dataclass
class Sample:
    title: str
    href: str


@dataclass
class DrugView:
    name: str
    evidence: list[str]
    caution: list[Piece] | None


@dataclass
class HypothesisView:
    rank: int
    h: Hypothesis
    percent: int
    treatment: list[AnswerSentence]
    drugs: list[DrugView]


def _require(request: Request, principal: Principal) -> None:
    """The API's audited permission check (denied: audit entry, then 403)."""
    providers(request).require(principal, Permission.draft_review, "consult", DENIED)


def _label(patient: Patient) -> ChartContext:
    return ChartContext(
        id=patient.id,
        name=mask_name(patient.name) or "（未登记姓名）",
        sex=SEX_LABELS[patient.sex],
        age=age_on(patient.birth_date, today_local()) if patient.birth_date else None,
    )


def _chart_context(chart: PatientChart) -> ChartContext:
    return replace(
        _label(chart.patient),
        conditions=list(dict.fromkeys(c.label for c in chart.conditions if c.clinical_status in _ACTIVE)),
        allergies=list(dict.fromkeys(a.substance for a in chart.allergies)),
        medications=list(
            dict.fromkeys(m.drug_name for m in chart.medications if m.status == MedicationStatus.active)
        ),
    )


def case_from_chart(chart: PatientChart) -> str:
    """The latest note's history and findings as the case text (what a clinician would paste), with the
    patient's name replaced by 患者 — the consult needs the findings, not who the patient is."""
    for note in sorted(chart.notes, key=lambda n: n.written_at, reverse=True):
        parts = [f"{s.title}：{s.text}" for s in note.sections if s.title in _NOTE_SECTIONS and s.text]
        if parts:
            text = "\n".join(parts)
            if chart.patient.name:
                text = text.replace(chart.patient.name, "患者")
            return text[:4000]
    return ""


def _samples(form: ConsultForm) -> list[Sample]:
    """The app's examples (``AppSpec.examples``) as links that fill the form."""
    spec = registry.get("consult")
    samples: list[Sample] = []
    for example in spec.examples if spec else ():
        query = {
            "case": str(example.body[example.subject]),
            "level": str(example.body.get("level", "attending")),
        }
        if form.patient_id:
            query["patient_id"] = form.patient_id
        samples.append(Sample(example.title, f"/consult?{urlencode(query)}"))
    return samples


def _form_page(
    request: Request,
    principal: Principal,
    form: ConsultForm,
    *,
    chart: ChartContext | None = None,
    error: MedFusionError | None = None,
    notice: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        FORM_PAGE,
        principal,
        status=status,
        form=form,
        chart=chart,
        error=error,
        notice=notice,
        levels=LEVELS,
        samples=_samples(form),
        can_name_patient=principal.may(Permission.patient_read),
    )


def _request_of(form: ConsultForm) -> ConsultRequest:
    """The form as the API's request; its validation errors as one typed error naming the fields."""
    try:
        # the level is validated here (junior | attending | senior), as the API validates it
        return ConsultRequest.model_validate(
            {"case": form.case.strip(), "patient_id": form.patient_id.strip() or None, "level": form.level}
        )
    except ValidationError as error:
        problems = [(str(e["loc"][0]) if e["loc"] else "form", str(e["msg"])) for e in error.errors()]
        message = "；".join(f"{name}: {msg.removeprefix('Value error, ')}" for name, msg in problems)
        raise InvalidInput(
            f"病例未提交：{message}", details=[{"field": f, "message": m} for f, m in problems]
        ) from error


def _submissions(request: Request) -> Submissions:
    root: Path = providers(request).settings.resolved_data_dir / "consult" / "submissions"
    return Submissions(root)


def _read_chart(request: Request, principal: Principal, patient_id: str) -> PatientChart:
    return PatientService(providers(request).db, principal).chart(patient_id)


@router.get("/consult", response_class=HTMLResponse)
def consult_page(
    request: Request,
    patient_id: Annotated[str | None, Query(max_length=64)] = None,
    case: Annotated[str | None, Query(max_length=4000)] = None,
    level: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    form = ConsultForm(
        case=case or "",
        patient_id=(patient_id or "").strip(),
        level=level if level in {v for v, _ in LEVELS} else "attending",
    )
    try:
        _require(request, principal)
        context = None
        if form.patient_id:
            chart = _read_chart(request, principal, form.patient_id)
            context = _chart_context(chart)
            form.case = form.case or case_from_chart(chart)
    except PermissionDenied as error:
        return error_page(request, principal, error)
    except MedFusionError as error:
        return _form_page(request, principal, form, error=error, status=error.status_code)
    return _form_page(request, principal, form, chart=context)


def _to_login_keeping(form: ConsultForm) -> RedirectResponse:
    """Back to this form (with its chart) after signing in; the script restores what was typed."""
    target = "/consult" + (f"?{urlencode({'patient_id': form.patient_id})}" if form.patient_id else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


@router.post("/consult", response_class=HTMLResponse)
def consult_submit(
    request: Request,
    case: Annotated[str, Form(max_length=20_000)] = "",
    patient_id: Annotated[str, Form(max_length=200)] = "",
    level: Annotated[str, Form(max_length=20)] = "attending",
    form_key: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    form = ConsultForm(case=case, patient_id=patient_id.strip(), level=level, key=form_key)
    principal = signed_in(request)
    if principal is None:
        return _to_login_keeping(form)
    try:
        _require(request, principal)
    except PermissionDenied as error:
        return error_page(request, principal, error)
    try:
        consult = _request_of(form)
        book = _submissions(request)
        record, first = book.claim(principal.username, form.key, consult)
        if not first:
            done = book.wait(record, REPEAT_WAIT_SECONDS)
            if done is not None and done.run_id:
                return RedirectResponse(f"/consult/runs/{done.run_id}", status_code=303)
            record, first = book.claim(principal.username, form.key, consult)
            if not first:  # the first is still running: say so rather than run the case twice
                notice = "同一份病例已提交，仍在处理中；完成后可在待审草稿中找到。"
                context = _context_or_none(request, principal, form)
                return _form_page(request, principal, form, chart=context, notice=notice, status=409)
        found = providers(request)
        service = ConsultService(found.db, principal, found.general(), found.knowledge(), found.graph())
        try:
            result = service.consult(consult)
        except BaseException:
            book.release(record)  # a corrected form may be sent again under the same key
            raise
        book.finish(record, result.run_id)
    except MedFusionError as error:
        context = _context_or_none(request, principal, form)
        return _form_page(request, principal, form, chart=context, error=error, status=error.status_code)
    return RedirectResponse(f"/consult/runs/{result.run_id}", status_code=303)


def _context_or_none(request: Request, principal: Principal, form: ConsultForm) -> ChartContext | None:
    """The chart card for a form shown again (the consult itself reads the chart when it runs)."""
    if not form.patient_id:
        return None
    try:
        return _chart_context(_read_chart(request, principal, form.patient_id.strip()))
    except MedFusionError:
        return None


def _hypotheses(result: ConsultResult) -> list[HypothesisView]:
    return [
        HypothesisView(
            rank=i,
            h=h,
            percent=round(h.probability * 100),
            treatment=h.treatment,
            drugs=[
                DrugView(d.name, d.evidence, cited_text(d.caution) if d.caution else None) for d in h.drugs
            ],
        )
        for i, h in enumerate(result.hypotheses, start=1)
    ]


def _checks(result: ConsultResult) -> list[tuple[str, list[str]]]:
    """Every suggested check once, with the diagnoses it would help tell apart."""
    checks: dict[str, list[str]] = {}
    for h in result.hypotheses:
        for check in h.checks:
            checks.setdefault(check, []).append(h.disease)
    return sorted(checks.items(), key=lambda item: -len(item[1]))


def result_page(
    request: Request,
    principal: Principal,
    result: ConsultResult,
    view: OutputView,
    chart: ChartContext | None,
) -> HTMLResponse:
    form = ConsultForm(case=result.case, patient_id=chart.id if chart else "", level=result.level)
    return render(
        request,
        RESULT_PAGE,
        principal,
        result=result,
        view=view,
        chart=chart,
        level_label=dict(LEVELS).get(result.level, result.level),
        hypotheses=_hypotheses(result),
        checks=_checks(result),
        sentences=result.sentences,
        answer_html=linked_markdown(result.answer),
        form=form,
        levels=LEVELS,
        confirm_href=f"/drafts#run-{result.run_id}",
    )


@router.get("/consult/runs/{run_id}", response_class=HTMLResponse)
def consult_run(request: Request, run_id: str) -> Response:
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    try:
        _require(request, principal)
        stored = stored_run(providers(request).db, principal, run_id)
        if stored.agent != "consult":
            raise NotFound(f"没有这次会诊 no consult run {run_id}")
        result = ConsultResult.model_validate(stored.result)
    except MedFusionError as error:
        return error_page(request, principal, error)
    chart = None
    if stored.patient_id:
        try:
            chart = _label(PatientService(providers(request).db, principal).get(stored.patient_id))
        except MedFusionError:
            chart = None  # the result stands without its patient label (e.g. the patient was removed)
    return result_page(request, principal, result, output_view(result, stored.status), chart)
