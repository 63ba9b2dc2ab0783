"""Med-Go MDT 会诊 (chapter 3 §一.(一) case 21), as a pipeline of the platform's layers:

1. the case, from the chart (audited) or a FHIR R4 Bundle;
2. the graph conflict check of current and proposed medications, allergies and procedures;
3. the team from the agent pool by the case's content, or one agent when the case is simple;
4. each specialty's view in parallel (agents with a model, the specialist path without);
5. a confidence-weighted Borda consensus;
6. self-correction: overall confidence below ``THRESHOLD`` triggers extra retrieval and a second round;
7. the conflict check again over what the consensus proposes; Markdown minutes; the run stored for review.

A caller may follow the run (``progress``): it is told the team once chosen, each specialty's view as it
answers (the model-backed views finish in any order), a second round and the consensus — the web page's
"watch the specialties answer". The result is the same with or without it.

Steps 2–7 are MDT's specialist stage in the platform's :class:`~medfusion.agents.fusion.FusionPipeline`,
which checks the consultation's question with the guardrails first and stores and audits the run.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from medfusion.agents.evidence import EvidenceBook
from medfusion.agents.fusion import FusionApp, FusionRun, FusionService, Outcome, SpecialistAnswer
from medfusion.agents.trace import Trace
from medfusion.apps.mdt import case as cases
from medfusion.apps.mdt import minutes, pool
from medfusion.apps.mdt.consensus import borda
from medfusion.apps.mdt.models import (
    ConsensusItem,
    MdtCase,
    MdtEvent,
    MdtRequest,
    MdtResult,
    SpecialtyView,
    TeamMember,
)
from medfusion.apps.mdt.specialty import agent_view, specialist_view
from medfusion.contract import AnswerSentence, Confidence, Fallback, OutputWarning, Path, WarningCode
from medfusion.errors import InvalidInput
from medfusion.graph.conflicts import Conflict, ConflictChecker
from medfusion.interop.fhir import bundle_to_charts
from medfusion.llm import GeneralModel
from medfusion.record.clinical_time import today_local
from medfusion.record.models import PatientChart
from medfusion.store.patient_service import PatientService

THRESHOLD = 0.5
Progress = Callable[[MdtEvent], None]
ENGINE = "specialist: guideline sections + knowledge graph + conflict check; confidence-weighted Borda"


@dataclass
class _Consultation:
    chart: PatientChart
    request: MdtRequest
    on: date | None


@dataclass
class _Specialist(SpecialistAnswer):
    case: MdtCase | None = None
    routing: str = "solo"
    complexity: int = 0
    views: list[SpecialtyView] = field(default_factory=list)
    consensus: list[ConsensusItem] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    rounds: int = 1
    minutes: str = ""
    tokens: int = 0


class MdtApp(FusionApp[_Consultation, _Specialist, MdtResult]):
    name = "mdt"
    engine = ENGINE

    def __init__(self, service: FusionService, progress: Progress | None = None) -> None:
        super().__init__(service)
        self.progress = progress

    def subject(self, consultation: _Consultation) -> str:
        # a pasted case is read by the guardrails too (a harmful or injected text is refused before use)
        request = consultation.request
        return "\n".join(part for part in (request.question, request.case) if part)

    def question(self, consultation: _Consultation) -> str:
        return consultation.request.question or f"MDT {consultation.chart.patient.id}"

    def patient_id(self, consultation: _Consultation) -> str | None:
        return consultation.request.patient_id

    def protected(self, run: FusionRun, consultation: _Consultation) -> list[str]:
        return [n for n in [consultation.chart.patient.name] if n]

    def specialist(self, run: FusionRun, consultation: _Consultation) -> _Specialist:
        chart, request, trace = consultation.chart, consultation.request, run.trace
        case = _diagnosed(cases.from_chart(chart, consultation.on))
        checker = ConflictChecker(self.service.graph)
        with trace.step("tool", "check_conflicts") as step:
            report = checker.check_chart(chart, request.proposed_drugs, request.proposed_procedures)
            step.output = {"conflicts": len(report.conflicts)}
        team, routing, complexity = pool.select(
            case, len(report.conflicts), request.proposed_drugs, request.specialties
        )
        _tell(self.progress, MdtEvent(kind="team", routing=routing, team=_members(team)))
        general = run.usable
        not_used = Fallback.no_model if not run.general.available else Fallback.prompt_injection
        ledger = run.general.ledger.totals
        tokens_before = ledger.prompt_tokens + ledger.completion_tokens
        rounds_of = _Rounds(
            self.service, case, run.book, report.conflicts, general, not_used, trace, self.progress
        )
        views = rounds_of.round(team, second=False)
        rounds, overall = 1, _overall(views)
        if overall < THRESHOLD:
            weak = {v.specialty for v in views if v.confidence < THRESHOLD}
            again_team = {k: team[k] for k in team if k in weak}
            _tell(self.progress, MdtEvent(kind="round", round=2, team=_members(again_team)))
            with trace.step("reasoning", "self-correction", overall=overall) as step:
                again = rounds_of.round(again_team, second=True)
                views = [next((a for a in again if a.specialty == v.specialty), v) for v in views]
                rounds, overall = 2, _overall(views)
                step.output = {"specialties": sorted(weak), "overall": overall}
        _tell(self.progress, MdtEvent(kind="consensus", round=rounds))
        consensus = borda(views)
        proposed = [c.key.removeprefix("drug:") for c in consensus if c.key.startswith("drug:")]
        with trace.step("tool", "check_conflicts(consensus)") as step:
            final = checker.check_chart(
                chart, [*request.proposed_drugs, *proposed], request.proposed_procedures
            )
            step.output = {"conflicts": len(final.conflicts)}
        paths = {v.path for v in views}
        path: Path = "fused" if paths & {"fused", "llm"} else "specialist"
        fallbacks = sorted({v.fallback for v in views if v.fallback})
        ledger = run.general.ledger.totals
        text = minutes.render(
            case,
            routing,
            views,
            consensus,
            final.conflicts,
            run.book.items,
            rounds,
            overall,
            request.question,
        )
        return _Specialist(
            sentences=[AnswerSentence(text=c.text, citations=c.citations) for c in consensus],
            confidence=Confidence(
                value=overall,
                method="mean of the specialties' confidences, weighted by the number of options each gave",
            ),
            path=path,
            model=next(iter(run.general.describe().values()), None) if path != "specialist" else None,
            fallback=Fallback(fallbacks[0]) if path == "specialist" and fallbacks else None,
            case=case,
            routing=routing,
            complexity=complexity,
            views=views,
            consensus=consensus,
            conflicts=final.conflicts,
            rounds=rounds,
            minutes=text,
            tokens=ledger.prompt_tokens + ledger.completion_tokens - tokens_before,
        )

    def warnings(
        self, run: FusionRun, consultation: _Consultation, answer: _Specialist, outcome: Outcome
    ) -> list[OutputWarning]:
        warnings = [
            OutputWarning.of(
                WarningCode.drug_conflict,
                "high" if c.severity.value in {"contraindicated", "major"} else "caution",
                detail=c.sentence(),
            )
            for c in answer.conflicts
        ]
        if answer.confidence.value < THRESHOLD:
            warnings.append(
                OutputWarning.of(
                    WarningCode.low_confidence, detail="二轮讨论后置信度仍偏低，请补充资料或线下会诊。"
                )
            )
        return warnings

    def output(
        self,
        run: FusionRun,
        consultation: _Consultation,
        answer: _Specialist,
        outcome: Outcome,
        fields: dict[str, Any],
    ) -> MdtResult:
        assert answer.case is not None
        return MdtResult(
            **fields,
            case=answer.case,
            routing=answer.routing,
            complexity=answer.complexity,
            specialties=answer.views,
            consensus=answer.consensus,
            conflicts=answer.conflicts,
            rounds=answer.rounds,
            minutes=answer.minutes,
            answer=answer.minutes,
            tokens=answer.tokens,
        )

    def refused(self, consultation: _Consultation, fields: dict[str, Any]) -> MdtResult:
        return MdtResult(
            **fields,
            case=cases.from_chart(consultation.chart, consultation.on),
            routing="solo",
            complexity=0,
            specialties=[],
            consensus=[],
            conflicts=[],
            rounds=0,
            minutes=fields["answer"],
            tokens=0,
        )


class MdtService(FusionService):
    def chart(self, request: MdtRequest, on: date | None = None) -> PatientChart:
        return self.prepare(request, on)[0]

    def prepare(self, request: MdtRequest, on: date | None = None) -> tuple[PatientChart, MdtRequest]:
        """The chart the request names (read, audited) and the request with what a pasted case proposes
        added to its proposals — everything that can fail on the input, before the consultation runs."""
        _check_specialties(request)
        if request.case is not None:
            read = cases.from_text(self.graph, request.case, on or today_local())
            update = {
                "proposed_drugs": list(dict.fromkeys([*request.proposed_drugs, *read.proposed_drugs])),
                "proposed_procedures": list(
                    dict.fromkeys([*request.proposed_procedures, *read.proposed_procedures])
                ),
            }
            chart, request = read.chart, request.model_copy(update=update)
        elif request.patient_id:
            chart = PatientService(self.db, self.principal).chart(request.patient_id)
        else:
            imported = bundle_to_charts(request.bundle)
            if len(imported.charts) != 1:
                raise InvalidInput.for_field(
                    "bundle", f"会诊需要恰好一位患者 one patient expected, got {len(imported.charts)}"
                )
            chart = imported.charts[0]
        _diagnosed(cases.from_chart(chart, on))
        return chart, request

    def run(self, request: MdtRequest, on: date | None = None, progress: Progress | None = None) -> MdtResult:
        chart, request = self.prepare(request, on)
        return self.consult_chart(chart, request, on, progress)

    def consult_chart(
        self,
        chart: PatientChart,
        request: MdtRequest,
        on: date | None = None,
        progress: Progress | None = None,
    ) -> MdtResult:
        """The MDT on a chart already in hand (``request`` supplies the question, proposals and the chosen
        specialties)."""
        _check_specialties(request)
        return self.pipeline.run(MdtApp(self, progress), _Consultation(chart, request, on))


@dataclass
class _Rounds:
    """One discussion round: every specialty's view in parallel — an agent with a model, the specialist
    path without (its fallback says why)."""

    service: FusionService
    case: MdtCase
    book: EvidenceBook
    conflicts: list[Conflict]
    general: GeneralModel | None
    not_used: Fallback
    trace: Trace
    progress: Progress | None = None

    def round(self, team: dict[str, str], second: bool) -> list[SpecialtyView]:
        table = pool.pool()
        case_text = _case_text(self.case)
        s = self.service
        number = 2 if second else 1

        def answered(view: SpecialtyView) -> SpecialtyView:
            _tell(self.progress, MdtEvent(kind="view", round=number, view=view))
            return view

        def agent(key: str, base: SpecialtyView) -> SpecialtyView:
            assert self.general is not None
            return answered(
                agent_view(
                    key, table[key], team[key], case_text, self.general, s.kb, s.graph, self.book, base
                )
            )

        with self.trace.step(
            "reasoning", f"specialties round {2 if second else 1}", team=",".join(team)
        ) as step:
            # The specialist path runs in team order, so the shared book numbers its evidence (K1, G1, …) the
            # same way on every run; only the model calls, which wait on the network, run in parallel.
            bases = [
                specialist_view(
                    key, table[key], team[key], self.case, s.kb, s.graph, self.book, self.conflicts, second
                )
                for key in team
            ]
            if self.general is None:
                views = [answered(base.model_copy(update={"fallback": self.not_used})) for base in bases]
            else:
                with ThreadPoolExecutor(max_workers=min(4, max(len(team), 1))) as workers:
                    views = list(workers.map(agent, list(team), bases))
            step.output = {v.label: v.confidence for v in views}
            step.tokens = sum(v.tokens for v in views)
        return views


def _diagnosed(case: MdtCase) -> MdtCase:
    if not case.diagnoses:
        raise InvalidInput.for_field(
            "case", "病例没有在治诊断，无需会诊 no active diagnoses", code="no_diagnoses"
        )
    return case


def _check_specialties(request: MdtRequest) -> None:
    unknown = pool.unknown(request.specialties)
    if unknown:
        raise InvalidInput.for_field(
            "specialties", f"没有这些科室 unknown specialties: {'、'.join(unknown)}", code="unknown_specialty"
        )


def _tell(progress: Progress | None, event: MdtEvent) -> None:
    if progress is not None:
        progress(event)


def _members(team: dict[str, str]) -> list[TeamMember]:
    table = pool.pool()
    return [TeamMember(specialty=k, label=table[k]["label"], reason=why) for k, why in team.items()]


def _overall(views: list[SpecialtyView]) -> float:
    weights = [max(len(v.options), 1) for v in views]
    return round(sum(v.confidence * w for v, w in zip(views, weights, strict=True)) / sum(weights), 3)


def _case_text(case: MdtCase) -> str:
    sex = {"male": "男", "female": "女"}.get(case.sex, "")
    diagnoses = "；".join(f"{d.name}（{d.icd10}）" for d in case.diagnoses)
    return (
        f"{minutes.age_text(case.age)}{sex}；诊断：{diagnoses}；"
        f"在用药物：{'、'.join(case.medications) or '无'}；"
        f"过敏：{'、'.join(case.allergies) or '无'}；关键结果：{'；'.join(case.key_results) or '无'}"
    )
