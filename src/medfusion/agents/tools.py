"""Agent tools: one small typed unit per capability — guideline retrieval, cited knowledge answers, graph
queries, the conflict check, the patient's chart. A tool declares its parameters as a pydantic model (sent
to the model as JSON schema, validated on the way back), does one thing, and puts what it found into the
run's :class:`EvidenceBook`, so whatever the agent says can cite it. Clinical scores register the same way
as they land (``ToolBox.register``).

The chart tool reads only the patient the run was opened for, through the audited patient service: the
model cannot choose another patient id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from medfusion.agents.evidence import EvidenceBook
from medfusion.graph import Graph
from medfusion.graph.conflicts import ConflictChecker
from medfusion.graph.model import Relation
from medfusion.knowledge.answers import Answerer, PatientContext
from medfusion.knowledge.base import KnowledgeBase
from medfusion.llm.messages import ToolSpec
from medfusion.record.clinical_time import sort_time
from medfusion.record.models import ConditionStatus, MedicationStatus, PatientChart
from medfusion.store.patient_service import PatientService


@dataclass
class ToolContext:
    kb: KnowledgeBase
    graph: Graph
    book: EvidenceBook
    patients: PatientService | None = None
    patient_id: str | None = None
    _chart: PatientChart | None = field(default=None, repr=False)

    def chart(self) -> PatientChart | None:
        if self.patients is None or self.patient_id is None:
            return None
        if self._chart is None:
            self._chart = self.patients.chart(self.patient_id)  # audited, permission-checked
        return self._chart

    def patient_context(self) -> PatientContext | None:
        chart = self.chart()
        if chart is None:
            return None
        active = {ConditionStatus.active, ConditionStatus.recurrence, ConditionStatus.relapse}
        return PatientContext(
            conditions=[c.name for c in chart.conditions if c.clinical_status in active][:50],
            allergies=[a.substance for a in chart.allergies][:50],
            medications=[m.drug_name for m in chart.medications if m.status == MedicationStatus.active][:50],
        )


class ToolOutput(BaseModel):
    content: str  # what the model reads (evidence ids inline)
    evidence_ids: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)


@dataclass
class Tool:
    name: str
    description: str
    params: type[BaseModel]
    run: Callable[[BaseModel, ToolContext], ToolOutput]

    def spec(self) -> ToolSpec:
        return ToolSpec(
            name=self.name, description=self.description, parameters=self.params.model_json_schema()
        )

    def call(self, arguments: str | dict[str, Any], ctx: ToolContext) -> ToolOutput:
        """Validate and run; bad arguments raise :class:`ToolArgumentError` with the reasons for the model."""
        try:
            params = (
                self.params.model_validate_json(arguments or "{}")
                if isinstance(arguments, str)
                else self.params.model_validate(arguments)
            )
        except ValidationError as error:
            reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:5])
            raise ToolArgumentError(reasons) from None
        return self.run(params, ctx)


class ToolArgumentError(ValueError):
    pass


class ToolBox:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self.tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if tool.name in self.tools:
            raise ValueError(f"tool {tool.name} registered twice")
        self.tools[tool.name] = tool

    def specs(self) -> list[ToolSpec]:
        return [t.spec() for t in self.tools.values()]

    def get(self, name: str) -> Tool | None:
        return self.tools.get(name)


# --- the standard tools ----------------------------------------------------------------------------
class SearchParams(BaseModel):
    query: str = Field(min_length=1, max_length=500, description="检索词或问题")
    k: int = Field(default=4, ge=1, le=10)


def _search(params: BaseModel, ctx: ToolContext) -> ToolOutput:
    assert isinstance(params, SearchParams)
    lines, ids = [], []
    for hit in ctx.kb.search(params.query, k=params.k):
        ident = ctx.book.add_hit(hit)
        ids.append(ident)
        lines.append(f"[{ident}] {hit.text}（来源：{hit.source}）")
    return ToolOutput(content="\n".join(lines) or "未检索到相关资料 nothing found", evidence_ids=ids)


class QuestionParams(BaseModel):
    question: str = Field(min_length=1, max_length=1000)


def _answer(params: BaseModel, ctx: ToolContext) -> ToolOutput:
    assert isinstance(params, QuestionParams)
    answer = Answerer(ctx.kb, ctx.graph).answer(params.question, ctx.patient_context())
    renamed = ctx.book.adopt(answer.evidence)
    lines = [f"{s.text} [{','.join(renamed[c] for c in s.citations)}]" for s in answer.sentences]
    return ToolOutput(
        content="\n".join(lines) or "知识库中未找到足够依据 no supported answer",
        evidence_ids=sorted(set(renamed.values())),
        data={"confidence": answer.confidence},
    )


class NeighbourParams(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="疾病、症状或药物名称")
    relation: Relation | None = None


def _neighbours(params: BaseModel, ctx: ToolContext) -> ToolOutput:
    assert isinstance(params, NeighbourParams)
    found = ctx.graph.queries.neighbours(params.name, params.relation, limit=30)
    lines, ids = [], []
    for n in found:
        fact = (
            f"{params.name} —{n.relation}→ {n.name}"
            if n.direction == "out"
            else f"{n.name} —{n.relation}→ {params.name}"
        )
        ident = ctx.book.add("graph", fact, n.source, review_status=n.review_status)
        ids.append(ident)
        lines.append(f"[{ident}] {fact}")
    return ToolOutput(content="\n".join(lines) or f"图谱中没有 {params.name} 的相关关系", evidence_ids=ids)


class SymptomParams(BaseModel):
    symptoms: list[str] = Field(min_length=1, max_length=20)


def _diagnose(params: BaseModel, ctx: ToolContext) -> ToolOutput:
    assert isinstance(params, SymptomParams)
    lines, ids = [], []
    for c in ctx.graph.queries.diagnose(params.symptoms, k=5):
        fact = f"症状{'、'.join(c.supporting)}提示：{c.disease}（得分 {c.score:.2f}）"
        ident = ctx.book.add("graph", fact, "knowledge graph: disease–symptom")
        ids.append(ident)
        lines.append(f"[{ident}] {fact}")
    return ToolOutput(content="\n".join(lines) or "图谱中没有匹配的疾病", evidence_ids=ids)


class ConflictParams(BaseModel):
    drugs: list[str] = Field(default_factory=list, max_length=50)
    procedures: list[str] = Field(default_factory=list, max_length=20)
    conditions: list[str] = Field(default_factory=list, max_length=50)
    allergies: list[str] = Field(default_factory=list, max_length=50)


def _conflicts(params: BaseModel, ctx: ToolContext) -> ToolOutput:
    assert isinstance(params, ConflictParams)
    checker = ConflictChecker(ctx.graph)
    chart = ctx.chart()
    if chart is not None:
        report = checker.check_chart(
            chart, params.drugs, params.procedures, params.conditions, params.allergies
        )
    else:
        report = checker.check(params.conditions, params.allergies, params.drugs, params.procedures)
    lines, ids = [], []
    for c in report.conflicts:
        fact = c.sentence()
        ident = ctx.book.add("graph", fact, c.source, review_status=c.review_status)
        ids.append(ident)
        lines.append(f"[{ident}] {fact}")
    if report.unresolved:
        lines.append(f"未识别的名称 unknown terms: {'、'.join(r.term for r in report.unresolved)}")
    return ToolOutput(
        content="\n".join(lines) or "未发现禁忌或相互作用 no conflicts found",
        evidence_ids=ids,
        data={"conflicts": len(report.conflicts), "unresolved": [r.term for r in report.unresolved]},
    )


class RecordParams(BaseModel):
    section: str = Field(default="summary", pattern=r"^(summary|conditions|medications|allergies|labs)$")


def _record(params: BaseModel, ctx: ToolContext) -> ToolOutput:
    assert isinstance(params, RecordParams)
    chart = ctx.chart()
    if chart is None:
        return ToolOutput(content="本次没有关联患者 no patient for this run")
    source = f"病历 chart {chart.patient.id}"
    facts: list[str] = []
    if params.section in {"summary", "conditions"}:
        facts += [
            f"诊断：{c.name}（{c.icd10_code}，{c.clinical_status.value}）" for c in chart.conditions[:20]
        ]
    if params.section in {"summary", "medications"}:
        facts += [
            f"用药：{m.drug_name}{f' {m.dose:g}{m.dose_unit}' if m.dose and m.dose_unit else ''}"
            f"{f' {m.frequency}' if m.frequency else ''}（{m.status.value}）"
            for m in chart.medications[:20]
        ]
    if params.section in {"summary", "allergies"}:
        facts += [f"过敏：{a.substance}{f'（{a.reaction}）' if a.reaction else ''}" for a in chart.allergies]
    if params.section in {"summary", "labs"}:
        recent = sorted(chart.observations, key=lambda o: sort_time(o.effective_at), reverse=True)[:15]
        facts += [
            f"检验：{o.name} {o.value if o.value is not None else o.value_text or ''}{o.unit or ''}"
            f"{f'（{o.flag.value}）' if o.flag else ''}"
            for o in recent
        ]
    lines, ids = [], []
    for fact in facts:
        ident = ctx.book.add("record", fact, source)
        ids.append(ident)
        lines.append(f"[{ident}] {fact}")
    return ToolOutput(content="\n".join(lines) or "病历中没有该部分内容", evidence_ids=ids)


SEARCH = Tool("search_guidelines", "检索指南与知识库段落，返回带编号的证据。", SearchParams, _search)
ANSWER = Tool(
    "answer_from_knowledge", "知识层的带引用回答（检索+知识图谱），每句带证据编号。", QuestionParams, _answer
)
NEIGHBOURS = Tool(
    "graph_neighbours",
    "查询知识图谱中某实体的关系（症状、检查、用药、科室、禁忌…）。",
    NeighbourParams,
    _neighbours,
)
DIAGNOSE = Tool("diseases_for_symptoms", "根据一组症状在知识图谱中排序可能的疾病。", SymptomParams, _diagnose)
CONFLICTS = Tool(
    "check_conflicts",
    "检查药物的禁忌、相互作用与过敏（有患者时自动合并其病历）。",
    ConflictParams,
    _conflicts,
)
RECORD = Tool("patient_record", "查阅本次关联患者的病历（诊断、用药、过敏、检验）。", RecordParams, _record)


def clinical_tools() -> ToolBox:
    return ToolBox([SEARCH, ANSWER, NEIGHBOURS, DIAGNOSE, CONFLICTS, RECORD])
