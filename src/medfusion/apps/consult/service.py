"""口袋主任医师 (the Med-Go pocket chief physician case, chapter 3 §二.(一)): a doctor types the chief
complaint and findings; the answer is a differential diagnosis with supporting and opposing evidence, the
checks that would discriminate, treatment ideas and drug suggestions with their sources, and a confidence —
at the depth the asking doctor's level calls for.

Specialist path: findings from the text (negation-aware), the chart when a patient is named (audited), a
knowledge-graph naive-Bayes ranking over the whole graph, the graph's checks and drugs for each branch,
the disease's own first-line treatment section from the guidelines, and the conflict check of every
suggested drug against the patient's conditions, allergies and medications. With a general model, the
``consult`` prompt explains the same result at the doctor's level and the guardrails check every sentence;
the structured differential is the specialist's either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medfusion.agents.fusion import (
    Draft,
    DraftRequest,
    FusionApp,
    FusionRun,
    FusionService,
    Outcome,
    SpecialistAnswer,
)
from medfusion.agents.tools import ToolContext
from medfusion.apps.consult import findings as parsing
from medfusion.apps.consult.models import ConsultRequest, ConsultResult, DrugIdea, Hypothesis, Level
from medfusion.contract import AnswerSentence, Confidence, Evidence, OutputWarning, WarningCode
from medfusion.errors import InvalidInput
from medfusion.graph.conflicts import ConflictChecker
from medfusion.graph.model import MEDICINES, Relation
from medfusion.graph.queries import Ranked
from medfusion.knowledge.answers import PatientContext
from medfusion.llm import prompt

ENGINE = "specialist: knowledge-graph naive Bayes + guideline retrieval + conflict check"
BRANCHES: dict[Level, int] = {"junior": 5, "attending": 4, "senior": 3}
LABEL: dict[Level, str] = {"junior": "住院医师", "attending": "主治医师", "senior": "副主任/主任医师"}
DEPTH: dict[Level, str] = {
    "junior": "逐条讲清每个鉴别诊断的支持点和反对点、每项检查要回答什么问题、"
    "需要警惕的危险信号和何时请上级医生。",
    "attending": "要点式：主要鉴别诊断及关键鉴别点、首选检查、治疗思路。",
    "senior": "只讲最关键的鉴别分歧和会改变决策的检查。",
}


class _Draft(Draft):
    """The consult prompt's reply (its JSON schema is named after this class)."""


@dataclass
class _Specialist(SpecialistAnswer):
    found: parsing.Findings | None = None
    hypotheses: tuple[Hypothesis, ...] = ()
    context: PatientContext | None = None


class ConsultApp(FusionApp[ConsultRequest, _Specialist, ConsultResult]):
    name = "consult"
    engine = ENGINE

    def subject(self, request: ConsultRequest) -> str:
        return request.case.strip()

    def patient_id(self, request: ConsultRequest) -> str | None:
        return request.patient_id

    def specialist(self, run: FusionRun, request: ConsultRequest) -> _Specialist:
        s, trace, case = self.service, run.trace, self.subject(request)
        context = run.tools.patient_context()
        with trace.step("reasoning", "findings") as step:
            found = parsing.parse(s.graph, case)
            step.output = {"present": found.present, "absent": found.absent}
        if not found.present and run.pre.red_flags:
            # a case that names an emergency (自杀未遂、意识不清, 农药中毒 …) is a case even when the graph
            # knows none of its words: the red-flag advice stands and no differential is invented
            return _Specialist(
                sentences=[],
                confidence=Confidence(value=0.0, method="no graph findings; red-flag advice only"),
                red_flag=True,
                found=found,
                context=context,
            )
        if not found.present:
            raise InvalidInput.for_field(
                "case",
                "没有识别出症状或体征，请描述主诉和主要发现 no findings recognised",
                code="no_findings",
            )
        with trace.step("reasoning", "rank") as step:
            ranked = s.graph.queries.rank_by_naive_bayes(
                found.present, found.absent, k=BRANCHES[request.level]
            )
            step.output = {"ranked": [(r.disease, r.probability) for r in ranked]}
        hypotheses = [self._branch(r, run.tools, context) for r in ranked]
        top = ranked[0] if ranked else None
        coverage = len(top.supporting) / len(found.present) if top else 0.0
        return _Specialist(
            sentences=self._specialist_sentences(hypotheses, request.level, run.tools),
            confidence=Confidence(
                value=round((top.probability if top else 0.0) * coverage, 3),
                method="top branch's posterior among the ranked branches × share of present findings it "
                "explains",
            ),
            found=found,
            hypotheses=tuple(hypotheses),
            context=context,
        )

    def draft(
        self, run: FusionRun, request: ConsultRequest, answer: _Specialist, evidence: list[Evidence]
    ) -> DraftRequest:
        assert answer.found is not None
        case, context_text = self.subject(request), answer.context.text() if answer.context else ""
        template = prompt("consult")
        messages = template.render(
            reasoning="cot",
            level_label=LABEL[request.level],
            depth=DEPTH[request.level],
            case=case,
            present=answer.found.present,
            absent=answer.found.absent,
            patient=context_text,
            hypotheses=list(answer.hypotheses),
            evidence=evidence,
        )
        return DraftRequest(template, messages, [case, context_text], purpose="consult", schema=_Draft)

    def drafted_confidence(self, answer: _Specialist, outcome: Outcome, share: float) -> Confidence:
        # the model explains the differential; the ranking, and so its confidence, stays the specialist's
        return answer.confidence

    def warnings(
        self, run: FusionRun, request: ConsultRequest, answer: _Specialist, outcome: Outcome
    ) -> list[OutputWarning]:
        warnings: list[OutputWarning] = []
        for h in answer.hypotheses:
            for d in h.drugs:
                if d.caution:
                    warnings.append(OutputWarning.of(WarningCode.drug_conflict, "high", detail=d.caution))
        if answer.hypotheses and answer.hypotheses[0].probability < 0.5:
            warnings.append(
                OutputWarning.of(WarningCode.low_confidence, detail="鉴别诊断之间差距不大，需更多信息。")
            )
        if not answer.hypotheses:
            warnings.append(
                OutputWarning.of(WarningCode.no_evidence, detail="知识图谱中没有与这些发现匹配的疾病。")
            )
        return warnings

    def output(
        self,
        run: FusionRun,
        request: ConsultRequest,
        answer: _Specialist,
        outcome: Outcome,
        fields: dict[str, Any],
    ) -> ConsultResult:
        assert answer.found is not None
        case, hypotheses = self.subject(request), list(answer.hypotheses)
        return ConsultResult(
            **fields,
            case=case,
            level=request.level,
            present=answer.found.present,
            absent=answer.found.absent,
            hypotheses=hypotheses,
            answer=_markdown(
                case, request.level, answer.found, hypotheses, outcome.sentences, fields["warnings"]
            ),
        )

    def refused(self, request: ConsultRequest, fields: dict[str, Any]) -> ConsultResult:
        return ConsultResult(
            **fields, case=self.subject(request), level=request.level, present=[], absent=[], hypotheses=[]
        )

    def _branch(self, ranked: Ranked, ctx: ToolContext, context: PatientContext | None) -> Hypothesis:
        disease = ranked.disease
        facts: list[str] = []
        symptoms = [
            n
            for n in self.service.graph.queries.neighbours(disease, Relation.has_symptom, limit=30)
            if n.direction == "out"
        ]
        if symptoms:
            facts.append(
                ctx.book.add_graph(
                    f"{disease}的典型症状", symptoms, self.service.graph.queries.symptom_profile(disease)[:12]
                )
            )
        checks = [
            n
            for n in self.service.graph.queries.neighbours(disease, Relation.needs_check, limit=10)
            if n.direction == "out"
        ]
        if checks:
            facts.append(ctx.book.add_graph(f"{disease}的关键检查", checks))
        treatment: list[AnswerSentence] = []
        for hit in self.service.kb.in_section(disease, "治疗", k=1):
            ident = ctx.book.add_hit(hit)
            quoted = AnswerSentence(text=hit.text.strip(), citations=[ident], location=hit.citation)
            treatment.append(quoted)
        drugs: list[DrugIdea] = []
        treated = [
            n
            for n in self.service.graph.queries.neighbours(disease, Relation.treated_by, limit=10)
            if n.direction == "out" and n.type in MEDICINES
        ]
        if treated:
            ident = ctx.book.add_graph(f"{disease}的常用药物", treated)
            checker = ConflictChecker(self.service.graph)
            ctx_conditions = context.conditions if context else []
            for drug in treated:
                caution = None
                if context is not None:
                    report = checker.check(
                        ctx_conditions, context.allergies, [*context.medications, drug.name]
                    )
                    mine = [c for c in report.conflicts if drug.name in c.items]
                    if mine:
                        c = mine[0]
                        text = c.sentence()
                        conflict_id = ctx.book.add("graph", text, c.source, review_status=c.review_status)
                        caution = f"{text} [{conflict_id}]"
                drugs.append(DrugIdea(name=drug.name, evidence=[ident], caution=caution))
        return Hypothesis(
            disease=disease,
            probability=ranked.probability,
            supporting=ranked.supporting,
            opposing=ranked.opposing,
            unexplained=ranked.unexplained,
            typical_not_reported=ranked.typical_not_reported,
            checks=[c.name for c in checks],
            treatment=treatment,
            drugs=drugs,
            evidence=facts,
        )

    @staticmethod
    def _specialist_sentences(
        hypotheses: list[Hypothesis], level: Level, ctx: ToolContext
    ) -> list[AnswerSentence]:
        out: list[AnswerSentence] = []
        for rank_no, h in enumerate(hypotheses, start=1):
            if not h.evidence:
                continue
            lead = "首先考虑" if rank_no == 1 else "需鉴别"
            why = f"支持点：{'、'.join(h.supporting)}" if h.supporting else "支持点不多"
            against = f"；反对点：{'、'.join(h.opposing)}" if h.opposing else ""
            out.append(
                AnswerSentence(text=f"{lead}{h.disease}（{why}{against}）。", citations=[h.evidence[0]])
            )
            if (level != "senior" or rank_no == 1) and h.checks and len(h.evidence) > 1:
                out.append(
                    AnswerSentence(text=f"建议检查：{'、'.join(h.checks[:6])}。", citations=[h.evidence[1]])
                )
            if level == "junior" and h.typical_not_reported:
                out.append(
                    AnswerSentence(
                        text=f"可追问：{'、'.join(h.typical_not_reported[:5])}。", citations=[h.evidence[0]]
                    )
                )
        return out


class ConsultService(FusionService):
    def consult(self, request: ConsultRequest) -> ConsultResult:
        return self.pipeline.run(ConsultApp(self), request)


def _markdown(
    case: str,
    level: Level,
    found: parsing.Findings,
    hypotheses: list[Hypothesis],
    sentences: list[AnswerSentence],
    warnings: list[OutputWarning],
) -> str:
    lines = [
        f"## 口袋主任医师 · 会诊意见（{LABEL[level]}版，草稿，需接诊医生确认）",
        "",
        f"**病例**：{case}",
        f"**阳性发现**：{'、'.join(found.present) or '无'}；**阴性发现**：{'、'.join(found.absent) or '无'}",
        "",
    ]
    for w in warnings:
        lines.append(f"> ⚠ [{w.code}] {w.message}")
    lines += ["", "### 讲解"] + [f"- {s.text} [{','.join(s.citations)}]" for s in sentences]
    lines += [
        "",
        "### 鉴别诊断",
        "| 诊断 | 概率 | 支持 | 反对 | 建议检查 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for h in hypotheses:
        lines.append(
            f"| {h.disease} | {h.probability:.2f} | {'、'.join(h.supporting) or '—'} | "
            f"{'、'.join(h.opposing) or '—'} | {'、'.join(h.checks[:5]) or '—'} |"
        )
    if level != "senior":
        lines += ["", "### 治疗思路与用药"]
        for h in hypotheses[:3]:
            for t in h.treatment:
                lines.append(f"- {h.disease}：{t.text} [{','.join(t.citations)}]")
            for d in h.drugs[:6]:
                note = f" ⚠ {d.caution}" if d.caution else ""
                lines.append(f"- {h.disease} 常用药：{d.name} [{','.join(d.evidence)}]{note}")
    return "\n".join(lines)
