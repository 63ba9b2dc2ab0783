"""The 智能问答 page (``/ask``): ask a question, optionally about one patient's chart, and read the cited
answer — the same :class:`~medfusion.apps.ask.service.AskService` as ``POST /api/ask`` (same guardrails,
stored run, audit), rendered with its path, evidence, warnings and status.

- ``GET /ask`` — the form; ``?question=`` / ``?reasoning=`` prefill it (the app's examples link here),
  ``?patient_id=`` names the chart to answer about (the chart's AI card links here; the patient is read
  through the audited patient service and shown by masked name).
- ``POST /ask`` — runs the ask and returns the page with the answer. With a general model configured and the
  page's script running (it sets ``progressive``), the ask goes on in the background and the page polls
  ``GET /ask/runs/{key}?partial=1`` for the answer; without the script the POST returns the finished page.
  A hidden ``ask_key`` makes a repeated submission return the first one's answer
  (:mod:`medfusion.apps.ask.tickets`).
- ``GET /ask/runs/{key}`` — an ask in flight (by its key) or a stored ask run (by its run id, the asker's
  own, as ``GET /api/ask/runs/{id}``).

The model's tokens are not streamed to the page: the guardrails check the whole draft (grounding, safety
wording, PII) before any of it may be shown, so what streams is progress, then the checked answer.
A session that expires while typing: the page's script keeps the draft in ``sessionStorage`` and puts it
back after signing in again."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from medfusion.agents.runs import stored_run
from medfusion.apps import registry
from medfusion.apps.ask.models import AskRequest, AskResult
from medfusion.apps.ask.service import AskService
from medfusion.apps.ask.tickets import KEY_PATTERN, Ticket, tickets
from medfusion.apps.ask.view import REASONING, SAFETY, AnswerView, answer_view, warning_class
from medfusion.apps.deps import providers
from medfusion.apps.page_frame import render, signed_in, to_login
from medfusion.errors import InvalidInput, MedFusionError, NotFound
from medfusion.record.clinical_time import age_on, today_local
from medfusion.record.models import SEX_LABELS
from medfusion.store.access import Permission, Principal
from medfusion.store.display import mask_name
from medfusion.store.patient_service import PatientService

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
PAGE = "ask/templates/ask.html"
ANSWER = "ask/templates/_answer.html"
PROGRESS = "ask/templates/_progress.html"
# how long a repeated submission waits for the first one before showing its progress instead
REPEAT_WAIT_SECONDS = 120.0
_KEY = re.compile(KEY_PATTERN)
_MODES = {mode for mode, _ in REASONING}


@dataclass
class AskForm:
    """What the form shows: as typed (kept through errors), never reinterpreted."""

    question: str = ""
    patient_id: str = ""
    reasoning: str = "direct"


@dataclass
class PatientLabel:
    """Which chart the answer uses, by masked name (minimum necessary on a page about a question)."""

    id: str
    name: str
    sex: str
    age: int | None


@dataclass
class Sample:
    title: str
    question: str
    reasoning: str
    href: str


class _Failed(MedFusionError):
    code = "ask_failed"
    status_code = 500


def _patient(request: Request, principal: Principal, patient_id: str) -> PatientLabel:
    """The named patient through the audited patient service (403 / 404 as the API)."""
    patient = PatientService(providers(request).db, principal).get(patient_id)
    age = age_on(patient.birth_date, today_local()) if patient.birth_date else None
    return PatientLabel(
        id=patient.id, name=mask_name(patient.name) or "（未登记姓名）", sex=SEX_LABELS[patient.sex], age=age
    )


def _samples(form: AskForm) -> list[Sample]:
    """The app's examples (``AppSpec.examples``) as links that fill the form."""
    spec = next((s for s in registry.apps() if s.name == "ask"), None)
    samples: list[Sample] = []
    for example in spec.examples if spec else ():
        question = str(example.body[example.subject])
        reasoning = str(example.body.get("reasoning", "direct"))
        query = {"question": question, "reasoning": reasoning}
        if form.patient_id:
            query["patient_id"] = form.patient_id
        samples.append(Sample(example.title, question, reasoning, f"/ask?{urlencode(query)}"))
    return samples


def _ask_request(form: AskForm) -> AskRequest:
    """The form as the API's request; its validation errors as one typed error naming the fields."""
    try:
        return AskRequest(
            question=form.question.strip(),
            patient_id=form.patient_id.strip() or None,
            reasoning=form.reasoning,  # validated here (direct | cot | tot)
        )
    except ValidationError as error:
        problems = [(str(e["loc"][0]) if e["loc"] else "form", str(e["msg"])) for e in error.errors()]
        message = "；".join(f"{field}: {msg.removeprefix('Value error, ')}" for field, msg in problems)
        raise InvalidInput(
            f"问题未提交：{message}",
            details=[{"field": f, "message": m} for f, m in problems],
        ) from error


def _work(request: Request, principal: Principal) -> Callable[[AskRequest], AskResult]:
    """The API's service, on the same long-lived knowledge base, graph and model."""
    found = providers(request)
    return AskService(found.db, principal, found.general(), found.knowledge(), found.graph()).ask


def _page(
    request: Request,
    principal: Principal,
    form: AskForm,
    *,
    status: int = 200,
    patient: PatientLabel | None = None,
    answer: AnswerView | None = None,
    ticket: Ticket | None = None,
    error: MedFusionError | None = None,
) -> HTMLResponse:
    general = providers(request).general()
    return render(
        request,
        PAGE,
        principal,
        status=status,
        form=form,
        key=uuid.uuid4().hex,  # a fresh key per rendering: the next submission is a new ask
        patient=patient,
        can_name_patient=principal.may(Permission.patient_read),
        can_review=principal.may(Permission.draft_review),
        reasoning_modes=REASONING,
        samples=_samples(form),
        model=general.describe().get("default") or next(iter(general.describe().values()), None),
        answer=answer,
        ticket=ticket,
        error=error,
        safety=SAFETY,
        warning_class=warning_class,
    )


def _fragment(
    request: Request, principal: Principal, name: str, status: int = 200, **context: Any
) -> HTMLResponse:
    return render(
        request,
        name,
        principal,
        status=status,
        can_review=principal.may(Permission.draft_review),
        safety=SAFETY,
        warning_class=warning_class,
        **context,
    )


def _form_of(ask: AskRequest) -> AskForm:
    return AskForm(question=ask.question, patient_id=ask.patient_id or "", reasoning=ask.reasoning)


def _label(request: Request, principal: Principal, patient_id: str | None) -> PatientLabel | None:
    """The chart's label for an answer already given (the ask itself read it, so a failure here only
    leaves the label out)."""
    if not patient_id:
        return None
    try:
        return _patient(request, principal, patient_id)
    except MedFusionError:
        return None


def _ticket_response(
    request: Request, principal: Principal, ticket: Ticket, patient: PatientLabel | None, partial: bool
) -> HTMLResponse:
    """An ask by its ticket: progress while it runs, then its answer or its typed error."""
    form = _form_of(ticket.request)
    if not ticket.done.is_set():
        if partial:
            return _fragment(request, principal, PROGRESS, status=202, ticket=ticket)
        return _page(request, principal, form, patient=patient, ticket=ticket)
    error: MedFusionError | None = ticket.error
    if ticket.crashed:
        error = _Failed("问答未完成（内部错误，已记录日志），请重试 the ask failed; please try again")
    if error is not None or ticket.result is None:
        error = error or _Failed("问答未完成 the ask did not finish")
        if partial:
            return _fragment(request, principal, ANSWER, status=error.status_code, error=error)
        return _page(request, principal, form, status=error.status_code, patient=patient, error=error)
    answer = answer_view(ticket.result)
    if partial:
        return _fragment(request, principal, ANSWER, answer=answer, patient=patient)
    return _page(request, principal, form, patient=patient, answer=answer)


@router.get("/ask", response_class=HTMLResponse)
def ask_page(
    request: Request,
    question: Annotated[str | None, Query(max_length=2000)] = None,
    patient_id: Annotated[str | None, Query(max_length=64)] = None,
    reasoning: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    form = AskForm(
        question=question or "",
        patient_id=(patient_id or "").strip(),
        reasoning=reasoning if reasoning in _MODES else "direct",
    )
    try:
        patient = _patient(request, principal, form.patient_id) if form.patient_id else None
    except MedFusionError as error:
        return _page(request, principal, form, status=error.status_code, error=error)
    return _page(request, principal, form, patient=patient)


@router.post("/ask", response_class=HTMLResponse)
def ask_submit(
    request: Request,
    question: Annotated[str, Form(max_length=20_000)] = "",
    patient_id: Annotated[str, Form(max_length=200)] = "",
    reasoning: Annotated[str, Form(max_length=20)] = "direct",
    ask_key: Annotated[str, Form(max_length=200)] = "",
    progressive: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    principal = signed_in(request)
    if principal is None:  # the page's script kept the draft; it is put back after signing in
        return to_login(request)
    form = AskForm(question=question, patient_id=patient_id.strip(), reasoning=reasoning)
    try:
        ask = _ask_request(form)
        patient = _patient(request, principal, ask.patient_id) if ask.patient_id else None
    except MedFusionError as error:
        return _page(request, principal, form, status=error.status_code, error=error)
    key = ask_key if _KEY.match(ask_key) else uuid.uuid4().hex
    try:
        ticket, created = tickets.claim(principal.username, key, ask)
    except MedFusionError as error:  # too many asks of this user still running
        return _page(request, principal, form, status=error.status_code, patient=patient, error=error)
    background = progressive == "1" and providers(request).general().available
    if created and background:
        tickets.start(ticket, _work(request, principal))
    elif created:
        ticket.run(_work(request, principal))
    elif not background:
        ticket.done.wait(REPEAT_WAIT_SECONDS)
    return _ticket_response(request, principal, ticket, patient, partial=False)


@router.get("/ask/runs/{key}", response_class=HTMLResponse)
def ask_run(request: Request, key: str, partial: Annotated[bool, Query()] = False) -> Response:
    """An ask in flight (its form key) or a stored ask run (its run id); ``partial``: the answer section
    only, for the page's script (202 while the ask runs)."""
    principal = signed_in(request)
    if principal is None:
        if partial:
            # the sign-in link carries the key back only when it is one (never text from the URL as is)
            shown = key if _KEY.match(key) else None
            return render(request, "ask/templates/_expired.html", None, status=401, key=shown)
        return to_login(request)
    try:
        if not _KEY.match(key):
            raise NotFound(f"没有这次问答 no ask {key}")
        ticket = tickets.get(principal.username, key)
        if ticket is not None:
            label = _label(request, principal, ticket.request.patient_id)
            return _ticket_response(request, principal, ticket, label, partial)
        stored = stored_run(providers(request).db, principal, key)
        if stored.agent != "ask":
            raise NotFound(f"没有这次问答 no ask {key}")
        result = AskResult.model_validate(stored.result)
    except MedFusionError as error:
        if partial:
            return _fragment(request, principal, ANSWER, status=error.status_code, error=error)
        return _page(request, principal, AskForm(), status=error.status_code, error=error)
    answer = answer_view(result, stored.status)
    label = _label(request, principal, stored.patient_id)
    if partial:
        return _fragment(request, principal, ANSWER, answer=answer, patient=label)
    form = AskForm(question=result.question, patient_id=stored.patient_id or "")
    return _page(request, principal, form, patient=label, answer=answer)
