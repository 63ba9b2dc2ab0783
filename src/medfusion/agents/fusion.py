"""The fusion frame: what every fusion app stands on (:class:`FusionService`) and the one sequence every
fusion app runs (:class:`FusionPipeline`, ARCHITECTURE.md "One contract for every clinical output"):

guardrails before → specialist stage → (with a model) prompt and structured draft → guardrails after →
fallback to the specialist answer → provenance → stored run with its trace → audit.

An app supplies typed stages (:class:`FusionApp`): the text the guardrails read, its specialist answer, its
prompt inputs, its own warnings, and how the guarded draft maps onto its output. It never re-implements the
sequence, so a harmful request gets the same ``refused`` output from every app, a model failure falls back
the same way everywhere, and every run is stored and audited alike.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, Field

from medfusion.agents.drafting import ModelSentence, guard
from medfusion.agents.evidence import EvidenceBook
from medfusion.agents.guardrails import Action, Finding, Guardrails, PreCheck
from medfusion.agents.runs import RunRecord, store_run
from medfusion.agents.tools import ToolContext
from medfusion.agents.trace import Trace
from medfusion.contract import (
    AnswerSentence,
    Confidence,
    DraftOutput,
    Evidence,
    Fallback,
    OutputWarning,
    Path,
    Provenance,
    Status,
    WarningCode,
)
from medfusion.graph import Graph
from medfusion.knowledge.base import KnowledgeBase
from medfusion.llm import GeneralModel, Message, PromptTemplate, Unavailable
from medfusion.specialists import red_flags
from medfusion.specialists.red_flags import RedFlag
from medfusion.store.access import Principal
from medfusion.store.database import Database
from medfusion.store.patient_service import PatientService

REFUSAL_ENGINE = "guardrails: safety"


class FusionOutput(DraftOutput):
    """A fusion app's output: the contract, the rendered draft, and what the pipeline recorded on the way."""

    guardrails: list[Finding] = Field(default_factory=list)  # every guardrail decision, kept or removed
    reasoning: str | None = None  # the model's chain of thought, for the reviewing clinician
    trace: list[dict[str, object]] = Field(default_factory=list)


class FusionService:
    def __init__(
        self,
        db: Database,
        principal: Principal,
        general: GeneralModel,
        kb: KnowledgeBase | None = None,
        graph: Graph | None = None,
    ) -> None:
        """``kb`` and ``graph``: pass long-lived instances (the API keeps one warm per database)."""
        self.db = db
        self.principal = principal
        self.general = general
        self.graph = graph or Graph(db)
        self.kb = kb or KnowledgeBase(db)

    @cached_property
    def guardrails(self) -> Guardrails:
        return Guardrails(self.graph)

    @cached_property
    def pipeline(self) -> FusionPipeline:
        return FusionPipeline(self)

    def tool_context(self, patient_id: str | None) -> ToolContext:
        """A run's tools: a fresh evidence book, and the chart (read through the audited service) only
        when the run names a patient."""
        return ToolContext(
            kb=self.kb,
            graph=self.graph,
            book=EvidenceBook(),
            patients=PatientService(self.db, self.principal) if patient_id else None,
            patient_id=patient_id,
        )


@dataclass
class FusionRun:
    """One run in progress, as the stages see it."""

    run_id: str
    trace: Trace
    tools: ToolContext
    pre: PreCheck
    general: GeneralModel  # the configured model, protecting the patient's name when a chart is read
    usable: GeneralModel | None  # the model when it may take part (configured, and the request allows it)
    findings: list[Finding] = field(default_factory=list)

    @property
    def book(self) -> EvidenceBook:
        return self.tools.book


@dataclass
class SpecialistAnswer:
    """What the deterministic path says: cited sentences and a confidence. Apps whose specialist stage
    already consulted the model (MDT's specialty agents) report the path, model and fallback they got."""

    sentences: list[AnswerSentence]
    confidence: Confidence
    path: Path = "specialist"
    model: str | None = None
    fallback: Fallback | None = None
    red_flag: bool = False  # the app saw an emergency sign the pipeline's own check may not


class Draft(BaseModel):
    """What the general model returns for every fusion prompt: optional reasoning and cited sentences."""

    reasoning: str = ""
    sentences: list[ModelSentence] = Field(min_length=1, max_length=20)


@dataclass
class DraftRequest:
    """An app's prompt inputs: the rendered messages, the template they came from, and what the asker gave
    (the grounding sources besides the evidence)."""

    template: PromptTemplate
    messages: list[Message]
    given: list[str]
    purpose: str
    schema: type[Draft] = Draft


@dataclass
class Outcome:
    """The answer so far: the specialist's, until a guarded model draft replaces it."""

    sentences: list[AnswerSentence]
    confidence: Confidence
    fallback: Fallback | None
    path: Path = "specialist"
    model: str | None = None
    prompt: str | None = None
    chain: str | None = None
    removed: int = 0  # drafted claims the guardrails removed


Request = TypeVar("Request")
Answer = TypeVar("Answer", bound=SpecialistAnswer)
Output = TypeVar("Output", bound=FusionOutput)


class FusionApp(ABC, Generic[Request, Answer, Output]):
    """The stages one fusion app supplies. ``name`` is the stored run's agent (``ask``, ``consult`` …)."""

    name: ClassVar[str]
    engine: ClassVar[str]

    def __init__(self, service: FusionService) -> None:
        self.service = service  # the database, principal, model, knowledge base, graph and guardrails

    @abstractmethod
    def subject(self, request: Request) -> str:
        """The text the guardrails read before anything runs (the question, the case)."""

    @abstractmethod
    def patient_id(self, request: Request) -> str | None: ...

    def question(self, request: Request) -> str:
        """What the stored run lists as its question."""
        return self.subject(request)

    def protected(self, run: FusionRun, request: Request) -> list[str]:
        """Identifiers the general model must never see even where no context word marks them."""
        chart = run.tools.chart()
        return [chart.patient.name] if chart and chart.patient.name else []

    @abstractmethod
    def specialist(self, run: FusionRun, request: Request) -> Answer: ...

    def draft(
        self, run: FusionRun, request: Request, answer: Answer, evidence: list[Evidence]
    ) -> DraftRequest | None:
        """The prompt for the general model over the (quarantined) evidence; None: no drafting stage."""
        return None

    def drafted_confidence(self, answer: Answer, outcome: Outcome, share: float) -> Confidence:
        """The confidence once a draft stands (``share``: drafted sentences that passed the guardrails)."""
        if outcome.path == "fused":
            return Confidence(
                value=round(answer.confidence.value * (0.5 + 0.5 * share), 3),
                method="fused: specialist confidence × (0.5 + 0.5 × share of drafted sentences that passed "
                "the guardrails)",
            )
        return Confidence(
            value=round(min(0.3, 0.3 * share), 3),
            method="llm: no specialist evidence supports the answer; capped at 0.3",
        )

    def warnings(
        self, run: FusionRun, request: Request, answer: Answer, outcome: Outcome
    ) -> list[OutputWarning]:
        """The app's own warnings (conflicts, low confidence …); the pipeline adds the shared ones."""
        return []

    @abstractmethod
    def output(
        self, run: FusionRun, request: Request, answer: Answer, outcome: Outcome, fields: dict[str, Any]
    ) -> Output:
        """The app's output: ``fields`` holds the contract (run id, evidence, confidence, provenance,
        status, warnings, sentences, guardrail findings, reasoning); the app adds ``answer`` and its
        payload."""

    @abstractmethod
    def refused(self, request: Request, fields: dict[str, Any]) -> Output:
        """The app's output for a refused request: ``fields`` is the whole contract, ``answer`` included;
        the app adds its payload's empty values."""

    def finish(self, run: FusionRun, request: Request, answer: Answer, output: Output) -> Output:
        """After the output is built, before it is stored (ask's memory writes here)."""
        return output


class FusionPipeline:
    """Runs one :class:`FusionApp` request through the sequence, on the service's database, principal,
    model, knowledge base, graph and guardrails."""

    def __init__(self, service: FusionService) -> None:
        self.service = service

    def run(self, app: FusionApp[Request, Answer, Output], request: Request) -> Output:
        s = self.service
        trace = Trace()
        run_id = str(uuid.uuid4())
        subject = app.subject(request)
        with trace.step("guardrail", "before") as step:
            pre = s.guardrails.before(subject)
            step.output = {"findings": [f.code for f in pre.findings], "injection_score": pre.injection_score}
        if pre.refusal is not None:
            refused = app.refused(request, refusal_fields(run_id, pre))
            return self._store(app, request, refused, trace)
        tools = s.tool_context(app.patient_id(request))
        run = FusionRun(run_id, trace, tools, pre, s.general, None, list(pre.findings))
        names = app.protected(run, request)
        run.general = s.general.protecting(names) if names else s.general
        run.usable = run.general if pre.model_allowed and run.general.available else None
        answer = app.specialist(run, request)
        outcome = Outcome(
            sentences=answer.sentences,
            confidence=answer.confidence,
            fallback=answer.fallback or _not_consulted(run),
            path=answer.path,
            model=answer.model,
        )
        if run.usable is not None:
            self._draft(app, run, request, answer, outcome)
        warnings = _red_flag(answer, pre.red_flags) + app.warnings(run, request, answer, outcome)
        warnings += _shared_warnings(run.findings, outcome)
        fields: dict[str, Any] = {
            "run_id": run_id,
            "evidence": tools.book.items,
            "confidence": outcome.confidence,
            "provenance": Provenance(
                path=outcome.path,
                engine=app.engine if outcome.path != "llm" else "general model, guardrails",
                model=outcome.model,
                prompt=outcome.prompt,
                fallback=outcome.fallback,
            ),
            "status": Status.needs_clinician_confirmation,
            "warnings": warnings,
            "sentences": outcome.sentences,
            "guardrails": run.findings,
            "reasoning": outcome.chain,
        }
        result = app.finish(run, request, answer, app.output(run, request, answer, outcome, fields))
        return self._store(app, request, result, trace)

    def _draft(
        self,
        app: FusionApp[Request, Answer, Output],
        run: FusionRun,
        request: Request,
        answer: Answer,
        outcome: Outcome,
    ) -> None:
        """The general model drafts from the quarantined evidence; the guardrails decide what stands."""
        assert run.usable is not None
        guardrails = self.service.guardrails
        evidence, quarantined = guardrails.quarantine(run.book.items)
        run.findings += quarantined
        asked = app.draft(run, request, answer, evidence)
        if asked is None:
            return
        with run.trace.step("llm", asked.purpose, prompt=asked.template.ref) as step:
            drafted = run.usable.structured(asked.messages, asked.schema, purpose=asked.purpose)
            if isinstance(drafted, Unavailable):
                step.outcome = drafted.reason.value
                outcome.fallback = Fallback(drafted.reason.value)
                return
            step.tokens = drafted.completion.usage.total_tokens
            step.output = {"sentences": len(drafted.value.sentences), "repairs": drafted.repairs}
        with run.trace.step("guardrail", "after") as step:
            guarded, path = guard(guardrails, drafted.value.sentences, asked.given, evidence)
            step.output = {
                "kept": len(guarded.sentences),
                "drafted": guarded.drafted,
                "findings": [f.code for f in guarded.findings],
            }
        run.findings += guarded.findings
        if not guarded.sentences:
            outcome.fallback = Fallback.guardrail_removed_all
            return
        share = len(guarded.sentences) / max(guarded.drafted, 1)
        outcome.sentences, outcome.path = guarded.sentences, path
        outcome.model, outcome.prompt, outcome.fallback = drafted.completion.model, asked.template.ref, None
        outcome.chain = drafted.value.reasoning or None
        outcome.confidence = app.drafted_confidence(answer, outcome, share)

    def _store(
        self, app: FusionApp[Request, Answer, Output], request: Request, result: Output, trace: Trace
    ) -> Output:
        steps = trace.as_json()
        result = result.model_copy(update={"trace": steps})
        store_run(
            self.service.db,
            self.service.principal,
            RunRecord(
                run_id=result.run_id,
                agent=app.name,
                question=app.question(request),
                patient_id=app.patient_id(request),
                path=result.provenance.path,
                model=result.provenance.model,
                status=result.status.value,
                result=result.model_dump(mode="json", exclude={"trace"}),
                steps=steps,
            ),
        )
        return result


def refusal_fields(run_id: str, pre: PreCheck) -> dict[str, Any]:
    """The one refused output every app returns: the safety response as the answer, the safe alternative,
    and — first, in the answer and in the warnings — the emergency advice where the text carries a red flag
    (the guardrails read the red flags before the harmful-request rules). Nothing was retrieved or drafted."""
    assert pre.refusal is not None
    flags = pre.red_flags
    answer = pre.refusal.response
    warnings: list[OutputWarning] = []
    if flags:
        answer = f"{red_flags.advice_text(flags)}\n\n{answer}"
        warnings.append(red_flag_warning(flags))
    warnings.append(OutputWarning.of(WarningCode.harmful_request, detail=pre.refusal.alternative))
    return {
        "run_id": run_id,
        "answer": answer,
        "sentences": [],
        "evidence": [],
        # which path refused: a rules.toml rule (1.0) or the harm classifier (its probability)
        "confidence": Confidence(
            value=pre.refusal.probability or 1.0, method=f"guardrails safety: {pre.refusal.basis}"
        ),
        "provenance": Provenance(path="specialist", engine=REFUSAL_ENGINE, fallback=Fallback.refused),
        "status": Status.refused,
        "warnings": warnings,
        "guardrails": pre.findings,
    }


def _not_consulted(run: FusionRun) -> Fallback | None:
    if not run.general.available:
        return Fallback.no_model
    return None if run.pre.model_allowed else Fallback.prompt_injection


def red_flag_warning(flags: list[RedFlag]) -> OutputWarning:
    """The one red-flag warning (contract/warnings.toml), naming the flags and their advice."""
    return OutputWarning.of(
        WarningCode.red_flag, detail=f"（{red_flags.summary(flags)}）{red_flags.advice_text(flags)}"
    )


def _red_flag(answer: SpecialistAnswer, flags: list[RedFlag]) -> list[OutputWarning]:
    """The red flags the guardrails read in the subject (``PreCheck.red_flags``), else the app's own sign."""
    if flags:
        return [red_flag_warning(flags)]
    return [OutputWarning.of(WarningCode.red_flag)] if answer.red_flag else []


def _shared_warnings(findings: list[Finding], outcome: Outcome) -> list[OutputWarning]:
    """The warnings every fusion app gives alike: injection, withheld passages, removed claims, and a
    model that failed (no model configured is not a failure)."""
    warnings: list[OutputWarning] = []
    codes = {f.code for f in findings}
    if "prompt_injection" in codes:
        warnings.append(OutputWarning.of(WarningCode.prompt_injection))
    if "injected_passage" in codes:
        warnings.append(OutputWarning.of(WarningCode.injected_passage))
    removed = [f for f in findings if f.action is Action.removed]
    if removed:
        warnings.append(OutputWarning.of(WarningCode.unsupported_claims_removed, count=len(removed)))
    if outcome.fallback and outcome.fallback is not Fallback.no_model:
        warnings.append(OutputWarning.of(WarningCode.llm_unavailable, reason=outcome.fallback.value))
    return warnings


def render(sentences: list[AnswerSentence]) -> str:
    """Sentences as one text with their citation marks: 句子[K1,G2]。"""
    return "".join(f"{s.text}[{','.join(s.citations)}]" if s.citations else s.text for s in sentences)
