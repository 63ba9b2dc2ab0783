"""Reasoning strategies, selectable per task (chapter 1, 二.(五) 思考模型):

- ``direct`` — answer from the evidence;
- ``cot`` — the prompt asks the model to reason step by step first (思维链); the reasoning is kept in the
  trace for the reviewing clinician, never shown as the answer;
- ``tot`` — tree-of-thought differential diagnosis (深度/树状思考): several hypotheses are explored as
  branches and pruned against the evidence.

The differential works without a model: the graph proposes branches (diseases ranked for the findings),
each is weighed by the findings that support it and by the disease's typical findings the case does not
mention, and weak branches are pruned (explaining fewer than half of the findings, or under half the best
branch's score). A model, when present, adds branches and arguments; a model branch survives only if
its supporting findings are among the case's findings — the evidence prunes the model, not the reverse.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from medfusion.contract import Fallback
from medfusion.graph import Graph
from medfusion.graph.model import Relation
from medfusion.llm import GeneralModel, Unavailable, prompt

Strategy = Literal["direct", "cot", "tot"]
MIN_SUPPORT = 0.5
RELATIVE_PRUNE = 0.5
MAX_BRANCHES = 6


class Hypothesis(BaseModel):
    disease: str
    supporting: list[str] = Field(default_factory=list)
    against: list[str] = Field(default_factory=list)  # typical findings not reported
    next_checks: list[str] = Field(default_factory=list)
    score: float = 0.0
    kept: bool = True
    pruned_because: str | None = None
    source: str = "graph"  # graph | llm | both


class Differential(BaseModel):
    findings: list[str]
    hypotheses: list[Hypothesis]
    path: str  # specialist | fused
    model: str | None = None
    prompt: str | None = None
    fallback: Fallback | None = None
    status: str = "needs_clinician_confirmation"


class _ModelBranch(BaseModel):
    disease: str = Field(min_length=1, max_length=60)
    supporting: list[str] = Field(default_factory=list, max_length=20)
    against: list[str] = Field(default_factory=list, max_length=20)
    next_checks: list[str] = Field(default_factory=list, max_length=10)
    keep: bool = True


class _ModelTree(BaseModel):
    hypotheses: list[_ModelBranch] = Field(default_factory=list, max_length=10)


def _prune(branches: list[Hypothesis], findings: list[str]) -> list[Hypothesis]:
    best = max((b.score for b in branches), default=0.0)
    for b in branches:
        share = len(b.supporting) / max(len(findings), 1)
        if share < MIN_SUPPORT:
            b.kept, b.pruned_because = False, f"仅解释 {len(b.supporting)}/{len(findings)} 个发现"
        elif b.score < best * RELATIVE_PRUNE:
            b.kept, b.pruned_because = False, "得分不足最佳分支的一半"
    return sorted(branches, key=lambda b: (not b.kept, -b.score))


def differential(
    findings: list[str], graph: Graph, general: GeneralModel | None = None, patient: str = ""
) -> Differential:
    findings = list(dict.fromkeys(f.strip() for f in findings if f.strip()))
    branches: dict[str, Hypothesis] = {}
    for c in graph.queries.diagnose(findings, k=MAX_BRANCHES):
        checks = [
            n.name
            for n in graph.queries.neighbours(c.disease, Relation.needs_check, limit=5)
            if n.direction == "out"
        ]
        branches[c.disease] = Hypothesis(
            disease=c.disease,
            supporting=c.supporting,
            against=c.not_observed[:6],
            next_checks=checks,
            score=round(c.score, 4),
        )
    path, model, fallback, ref = "specialist", None, None, None
    if general is not None and general.available:
        template = prompt("differential")
        ref = template.ref
        candidates = [
            {"disease": b.disease, "supporting": b.supporting, "missing": b.against}
            for b in branches.values()
        ]
        messages = template.render(reasoning="cot", findings=findings, candidates=candidates, patient=patient)
        result = general.structured(messages, _ModelTree, purpose="differential")
        if isinstance(result, Unavailable):
            fallback = Fallback(result.reason.value)
        else:
            path, model = "fused", result.completion.model
            for branch in result.value.hypotheses[: MAX_BRANCHES + 2]:
                grounded = [s for s in branch.supporting if s in findings]
                if branch.disease in branches:
                    h = branches[branch.disease]
                    h.source = "both"
                    h.next_checks = list(dict.fromkeys([*h.next_checks, *branch.next_checks]))[:6]
                    h.against = list(dict.fromkeys([*h.against, *branch.against]))[:8]
                    if not branch.keep:
                        h.score = round(
                            h.score * 0.8, 4
                        )  # the model's doubt lowers, never removes, a graph branch
                elif grounded:
                    branches[branch.disease] = Hypothesis(
                        disease=branch.disease,
                        supporting=grounded,
                        against=branch.against[:8],
                        next_checks=branch.next_checks[:6],
                        score=round(len(grounded) / len(findings) * 0.8, 4),
                        source="llm",
                    )
    else:
        fallback = Fallback.no_model
    return Differential(
        findings=findings,
        hypotheses=_prune(list(branches.values()), findings),
        path=path,
        model=model,
        prompt=ref,
        fallback=fallback,
    )
