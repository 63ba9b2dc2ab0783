"""One specialty's view of the case.

Specialist path (no model, or the model failed): for each diagnosis the specialty owns, its guideline
treatment section (K), the graph's checks (G) and first-line drugs — a drug the patient already takes is
proposed to continue, others as options; imaging and pathology take the imaging / tissue checks of every
diagnosis; clinical pharmacy turns each graph conflict into a review item. A second round (self-correction
below the confidence threshold) adds passages retrieved for the diagnosis and the specialty together.

General-model path: the specialty is an agent (agents.runtime) with its role and the retrieval, graph and
conflict tools; its guarded sentences become options keyed by the drug or check they name.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from medfusion.agents.evidence import EvidenceBook
from medfusion.agents.guardrails import Guardrails
from medfusion.agents.plans import clinical_plan
from medfusion.agents.runtime import Agent, AgentSpec, Budget
from medfusion.agents.tools import ToolContext, clinical_tools
from medfusion.apps.mdt.models import MdtCase, Option, SpecialtyView
from medfusion.graph import Graph
from medfusion.graph.conflicts import Conflict
from medfusion.graph.model import MEDICINES, EntityType, Relation
from medfusion.knowledge.answers import NO_CONFLICT_SOURCE
from medfusion.knowledge.base import KnowledgeBase
from medfusion.llm import GeneralModel

_IMAGING = re.compile(r"(CT|MRI|核磁|超声|B超|X线|影像|PET|造影|钼靶)")
_TISSUE = re.compile(r"(病理|活检|穿刺|免疫组化|基因|分子|细胞学)")
_FIRST = re.compile(r"^[^。；]*[。；]?")
_LIFESTYLE = re.compile(r"(饮食|营养|生活方式|减重|体重|运动|戒烟|限酒|限盐)")
DEFAULT_FOCUS = ("treatment", "drugs", "checks")
_TOOLS = ["search_guidelines", "graph_neighbours", "check_conflicts", "answer_from_knowledge"]


def graph_disease(graph: Graph, name: str, icd10: str) -> str | None:
    """The graph's disease for a chart diagnosis: by name or synonym, else by its ICD-10 category."""
    for term in (name, icd10.split(".")[0], icd10):
        found = graph.lexicon.resolve_term(EntityType.disease, term)
        if found is not None:
            return found.name
    return None


def owns(spec: dict[str, Any], name: str, icd10: str) -> bool:
    if not spec.get("icd10") and not spec.get("keywords"):
        return True  # imaging, pathology, pharmacy, general practice look at the whole case
    return any(icd10.upper().startswith(p) for p in spec.get("icd10", [])) or any(
        k in name for k in spec.get("keywords", [])
    )


def _first_sentence(text: str) -> str:
    """A passage's opening sentence (or its first 80 characters when it has none)."""
    first = _FIRST.match(text.strip())
    return first.group() if first else text[:80]


def specialist_view(
    key: str,
    spec: dict[str, Any],
    reason: str,
    case: MdtCase,
    kb: KnowledgeBase,
    graph: Graph,
    book: EvidenceBook,
    conflicts: list[Conflict],
    second_round: bool = False,
) -> SpecialtyView:
    options: list[Option] = []

    def offer(key: str, text: str, basis: str, ident: str, confidence: float) -> None:
        options.append(Option(key=key, text=text, basis=basis, citations=[ident], confidence=confidence))

    diagnoses = [d for d in case.diagnoses if owns(spec, d.name, d.icd10)]
    focus = set(spec.get("focus", DEFAULT_FOCUS))
    covered = 0
    if "conflicts" in focus:
        diagnoses = []  # the pharmacist reviews the medication list, not each disease
        if not conflicts:
            text = "未发现在用药物之间及与诊断、过敏之间的已知冲突（规则覆盖有限，需药师复核）。"
            offer("review:none", text, "知识图谱冲突检查", book.add("graph", text, NO_CONFLICT_SOURCE), 0.6)
        for conflict in conflicts:
            ident = book.add(
                "graph", conflict.sentence(), conflict.source, review_status=conflict.review_status
            )
            # the option's key, not the specialty's: ``key`` names this view (SpecialtyView.specialty)
            review = f"review:{'+'.join(sorted(conflict.items))}"
            offer(review, f"用药审核：{conflict.sentence()}", "知识图谱冲突检查", ident, 0.9)
    for d in diagnoses:
        disease = graph_disease(graph, d.name, d.icd10)
        if disease is None:
            continue
        found_any = False
        checks = [
            n
            for n in graph.queries.neighbours(disease, Relation.needs_check, limit=12)
            if n.direction == "out"
        ]
        if "imaging" in focus:
            checks = [c for c in checks if _IMAGING.search(c.name)]
        elif "tissue" in focus:
            checks = [c for c in checks if _TISSUE.search(c.name)]
        elif "checks" not in focus:
            checks = []
        if "lifestyle" in focus:
            for hit in kb.in_section(disease, "治疗", k=1):
                advice = [
                    part for part in re.findall(r"[^。；]+[。；]?", hit.text) if _LIFESTYLE.search(part)
                ]
                if advice:
                    ident = book.add_hit(hit)
                    text = f"{disease}：{advice[0].strip()}"
                    offer(f"lifestyle:{disease}", text, "指南中的饮食与生活方式建议", ident, 0.7)
                    found_any = True
        if "treatment" in focus:
            for hit in kb.in_section(disease, "治疗", k=1):
                ident = book.add_hit(hit)
                offer(
                    f"treat:{disease}", f"{disease}：{_first_sentence(hit.text)}", "指南治疗推荐", ident, 0.8
                )
                found_any = True
        if "drugs" in focus:
            treated = [
                n
                for n in graph.queries.neighbours(disease, Relation.treated_by, limit=8)
                if n.direction == "out" and n.type in MEDICINES
            ]
            if treated:
                ident = book.add_graph(f"{disease}的常用药物", treated)
                taking = [t for t in treated if any(t.name in m for m in case.medications)]
                for t in taking:
                    offer(
                        f"drug:{t.name}", f"继续{t.name}（{disease}）", "患者在用且为该病常用药", ident, 0.7
                    )
                for t in [t for t in treated if t not in taking][:2]:
                    offer(f"drug:{t.name}", f"可考虑{t.name}（{disease}）", "该病常用药", ident, 0.5)
                found_any = True
        if checks:
            ident = book.add_graph(f"{disease}的关键检查", checks)
            for c in checks[:3]:
                offer(f"check:{c.name}", f"完善/复查{c.name}（{disease}）", "该病关键检查", ident, 0.6)
            found_any = True
        if second_round:
            for hit in kb.search(f"{disease} {spec['label']} 治疗 随访", k=2):
                offer(
                    f"evidence:{hit.chunk_id}",
                    _first_sentence(hit.text),
                    "第二轮检索",
                    book.add_hit(hit),
                    0.45,
                )
                found_any = True
        covered += found_any
    options = list({o.key: o for o in options}.values())
    options.sort(key=lambda o: -o.confidence)
    if options:
        share = covered / len(diagnoses) if diagnoses else 1.0
        confidence = round(sum(o.confidence for o in options) / len(options) * (0.5 + 0.5 * share), 3)
    else:
        confidence = 0.2
    return SpecialtyView(
        specialty=key,
        label=spec["label"],
        reason=reason,
        options=options[:8],
        confidence=confidence,
        path="specialist",
    )


def _option_key(graph: Graph, text: str) -> str:
    for m in graph.lexicon.mentions(text):
        if m.entity.type in {"drug", "drug_class"}:
            return f"drug:{m.entity.name}"
        if m.entity.type == "check":
            return f"check:{m.entity.name}"
    return "text:" + hashlib.sha1(text.encode()).hexdigest()[:10]


def agent_view(
    key: str,
    spec: dict[str, Any],
    reason: str,
    case_text: str,
    general: GeneralModel,
    kb: KnowledgeBase,
    graph: Graph,
    book: EvidenceBook,
    fallback: SpecialtyView,
) -> SpecialtyView:
    """The specialty as a tool-using agent; its specialist view stands if the model fails or nothing it says
    survives the guardrails."""
    agent = Agent(
        AgentSpec(
            name=f"mdt:{key}", role=spec["role"], tools=_TOOLS, budget=Budget(max_steps=4, max_tool_calls=6)
        ),
        clinical_tools(),
        general,
        clinical_plan,
        Guardrails(graph),
    )
    ctx = ToolContext(kb=kb, graph=graph, book=book)  # the team's one book: ids stay unique across agents
    run = agent.run(f"多学科会诊，请从{spec['label']}角度给出建议。病例：{case_text}", ctx)
    if run.path == "specialist":
        return fallback.model_copy(
            update={"fallback": run.fallback, "tokens": run.tokens, "findings": run.findings}
        )
    kept = len(run.sentences)
    drafted = kept + sum(1 for f in run.findings if f.action.value == "removed")
    confidence = round(0.7 * kept / max(drafted, 1), 3)
    options = [
        Option(
            key=_option_key(graph, s.text),
            text=s.text,
            basis=f"{spec['label']}（通用模型，经护栏核查）",
            citations=s.citations,
            confidence=confidence,
        )
        for s in run.sentences
    ]
    return SpecialtyView(
        specialty=key,
        label=spec["label"],
        reason=reason,
        options=options,
        confidence=confidence,
        path=run.path,
        tokens=run.tokens,
        findings=run.findings,
    )
