"""Med-Go MDT 会诊 (chapter 3 §一.(一) case 21), as a pipeline of the platform's layers:

1. the case, from the chart (audited) or a FHIR R4 Bundle;
2. the graph conflict check of current and proposed medications, allergies and procedures;
3. the team from the agent pool by the case's content, or one agent when the case is simple;
4. each specialty's view in parallel (agents with a model, the specialist path without);
5. a confidence-weighted Borda consensus;
6. self-correction: overall confidence below ``THRESHOLD`` triggers extra retrieval and a second round;
7. the conflict check again over what the consensus proposes; Markdown minutes; the run stored for review.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from medfusion.agents.evidence import EvidenceBook
from medfusion.agents.fusion import FusionService
from medfusion.agents.runs import RunRecord, store_run
from medfusion.agents.trace import Trace
from medfusion.apps.mdt import case as cases
from medfusion.apps.mdt import minutes, pool
from medfusion.apps.mdt.consensus import borda
from medfusion.apps.mdt.models import MdtCase, MdtRequest, MdtResult, SpecialtyView
from medfusion.apps.mdt.specialty import agent_view, specialist_view
from medfusion.contract import Confidence, OutputWarning, Provenance, Status
from medfusion.errors import InvalidInput
from medfusion.graph.conflicts import Conflict, ConflictChecker
from medfusion.interop.fhir import bundle_to_charts
from medfusion.llm import GeneralModel
from medfusion.record.models import PatientChart
from medfusion.store.patient_service import PatientService

THRESHOLD = 0.5
ENGINE = "specialist: guideline sections + knowledge graph + conflict check; confidence-weighted Borda"


class MdtService(FusionService):
    def chart(self, request: MdtRequest) -> PatientChart:
        if request.patient_id:
            return PatientService(self.db, self.principal).chart(request.patient_id)
        imported = bundle_to_charts(request.bundle)
        if len(imported.charts) != 1:
            raise InvalidInput.for_field(
                "bundle", f"会诊需要恰好一位患者 one patient expected, got {len(imported.charts)}"
            )
        return imported.charts[0]

    def run(self, request: MdtRequest, on: date | None = None) -> MdtResult:
        return self.consult_chart(self.chart(request), request, on)

    def consult_chart(self, chart: PatientChart, request: MdtRequest, on: date | None = None) -> MdtResult:
        """The MDT on a chart already in hand (``request`` supplies the question and proposals)."""
        trace = Trace()
        case = cases.from_chart(chart, on)
        if not case.diagnoses:
            raise InvalidInput.for_field(
                "case", "病例没有在治诊断，无需会诊 no active diagnoses", code="no_diagnoses"
            )
        checker = ConflictChecker(self.graph)
        with trace.step("tool", "check_conflicts") as step:
            report = checker.check_chart(chart, request.proposed_drugs, request.proposed_procedures)
            step.output = {"conflicts": len(report.conflicts)}
        team, routing, complexity = pool.select(case, len(report.conflicts), request.proposed_drugs)
        book = EvidenceBook()
        general = self.general.protecting([chart.patient.name]) if self.general.available else self.general
        tokens_before = general.ledger.totals.prompt_tokens + general.ledger.totals.completion_tokens
        views = self._round(case, team, book, report.conflicts, general, trace, second=False)
        rounds = 1
        overall = _overall(views)
        if overall < THRESHOLD:
            weak = {v.specialty for v in views if v.confidence < THRESHOLD}
            with trace.step("reasoning", "self-correction", overall=overall) as step:
                again = self._round(
                    case, {k: team[k] for k in weak}, book, report.conflicts, general, trace, True
                )
                views = [next((a for a in again if a.specialty == v.specialty), v) for v in views]
                rounds, overall = 2, _overall(views)
                step.output = {"specialties": sorted(weak), "overall": overall}
        consensus = borda(views)
        proposed = [c.key.removeprefix("drug:") for c in consensus if c.key.startswith("drug:")]
        with trace.step("tool", "check_conflicts(consensus)") as step:
            final = checker.check_chart(
                chart, [*request.proposed_drugs, *proposed], request.proposed_procedures
            )
            step.output = {"conflicts": len(final.conflicts)}
        paths = {v.path for v in views}
        path = "fused" if paths & {"fused", "llm"} else "specialist"
        fallbacks = sorted({v.fallback for v in views if v.fallback})
        warnings = [
            OutputWarning(
                code="drug_conflict",
                severity="high" if c.severity.value in {"contraindicated", "major"} else "caution",
                message=c.sentence(),
            )
            for c in final.conflicts
        ]
        if overall < THRESHOLD:
            warnings.append(
                OutputWarning(code="low_confidence", message="二轮讨论后置信度仍偏低，请补充资料或线下会诊。")
            )
        text = minutes.render(
            case, routing, views, consensus, final.conflicts, book.items, rounds, overall, request.question
        )
        tokens = general.ledger.totals.prompt_tokens + general.ledger.totals.completion_tokens - tokens_before
        result = MdtResult(
            run_id=str(uuid.uuid4()),
            case=case,
            routing=routing,
            complexity=complexity,
            specialties=views,
            consensus=consensus,
            conflicts=final.conflicts,
            rounds=rounds,
            minutes=text,
            answer=text,
            sentences=[{"text": c.text, "citations": c.citations} for c in consensus],
            evidence=book.items,
            confidence=Confidence(
                value=overall,
                method="mean of the specialties' confidences, weighted by the number of options each gave",
            ),
            provenance=Provenance(
                path=path,
                engine=ENGINE,
                model=next(iter(general.describe().values()), None) if path != "specialist" else None,
                fallback=", ".join(fallbacks)
                if path == "specialist" and fallbacks
                else ("no_model" if not self.general.available else None),
            ),
            status=Status.needs_clinician_confirmation,
            warnings=warnings,
            tokens=tokens,
        )
        steps = trace.as_json()
        store_run(
            self.db,
            self.principal,
            RunRecord(
                run_id=result.run_id,
                agent="mdt",
                question=request.question or f"MDT {case.patient_id}",
                patient_id=request.patient_id,
                path=path,
                model=result.provenance.model,
                status=result.status.value,
                result=result.model_dump(mode="json"),
                steps=steps,
            ),
        )
        return result.model_copy(update={"trace": steps})

    def _round(
        self,
        case: MdtCase,
        team: dict[str, str],
        book: EvidenceBook,
        conflicts: list[Conflict],
        general: GeneralModel,
        trace: Trace,
        second: bool,
    ) -> list[SpecialtyView]:
        table = pool.pool()
        case_text = _case_text(case)

        def one(key: str) -> SpecialtyView:
            base = specialist_view(
                key, table[key], team[key], case, self.kb, self.graph, book, conflicts, second
            )
            if not general.available:
                return base.model_copy(update={"fallback": "no_model"})
            return agent_view(key, table[key], team[key], case_text, general, self.kb, self.graph, book, base)

        with trace.step("reasoning", f"specialties round {2 if second else 1}", team=",".join(team)) as step:
            with ThreadPoolExecutor(max_workers=min(4, max(len(team), 1))) as pool_:
                views = list(pool_.map(one, list(team)))
            step.output = {v.label: v.confidence for v in views}
            step.tokens = sum(v.tokens for v in views)
        return views


def _overall(views: list[SpecialtyView]) -> float:
    weights = [max(len(v.options), 1) for v in views]
    return round(sum(v.confidence * w for v, w in zip(views, weights, strict=True)) / sum(weights), 3)


def _case_text(case: MdtCase) -> str:
    sex = {"male": "男", "female": "女"}.get(case.sex, "")
    diagnoses = "；".join(f"{d.name}（{d.icd10}）" for d in case.diagnoses)
    return (
        f"{case.age}岁{sex}；诊断：{diagnoses}；在用药物：{'、'.join(case.medications) or '无'}；"
        f"过敏：{'、'.join(case.allergies) or '无'}；关键结果：{'；'.join(case.key_results) or '无'}"
    )
