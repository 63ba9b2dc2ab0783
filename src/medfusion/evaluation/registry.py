"""The targets by name — one place that builds them, for the CLI, the API and the job workers that
re-create a target in another process (or on another Ray node) from its name alone."""

from __future__ import annotations

from medfusion.errors import InvalidInput
from medfusion.evaluation.grounding import ClaimCheck
from medfusion.evaluation.targets import (
    AskTarget,
    ConsultTarget,
    DeidTarget,
    FindingsTarget,
    GuardrailTarget,
    ModelTarget,
    RetrievalMcqTarget,
    Target,
    TriageTarget,
)
from medfusion.graph.store import GraphStore
from medfusion.knowledge import packs
from medfusion.knowledge.base import KnowledgeBase
from medfusion.llm import get_general_model
from medfusion.settings import get_settings
from medfusion.store.database import Database, get_database

TARGETS = {
    "llm": "配置的通用大模型（裸模型）the configured general model, bare",
    "ask": "统一问答流水线（护栏+检索+图谱+模型）the ask pipeline",
    "guardrails": "离线安全规则 offline safety rules",
    "retrieval-mcq": "离线检索选择题基线 offline retrieval baseline for MCQ",
    "triage-graph": "离线图谱分科 offline department from the graph",
    "consult": "口袋主任医师鉴别诊断 pocket chief physician differential",
    "deid": "离线去标识化 offline de-identification",
    "findings": "对话症状与阴阳性抽取 symptom findings from dialogue",
}
_OFFLINE: dict[str, type[GuardrailTarget] | type[DeidTarget]] = {
    "guardrails": GuardrailTarget,
    "deid": DeidTarget,
}


def check(name: str) -> None:
    """An unknown target is bad input, before anything runs."""
    if name not in TARGETS:
        raise InvalidInput.for_field(
            "target", f"未知目标 unknown target {name}; see `medfusion eval list`", code="unknown_target"
        )


def _database(url: str | None) -> Database:
    return get_database() if url in {None, get_settings().resolved_database_url} else Database(str(url))


def build(name: str, database_url: str | None = None) -> Target:
    """The target ``name``; its database (when it needs one) is this process's unless a job worker passes
    the URL it was given."""
    check(name)
    if name in _OFFLINE:
        return _OFFLINE[name]()
    general = get_general_model(get_settings())
    if name == "llm" and not general.available:
        raise InvalidInput.for_field(
            "target", "未配置通用大模型 no model configured (MEDFUSION_LLM_*)", code="no_model"
        )
    db = _database(database_url)
    packs.ensure_shipped(db)
    if name == "llm":  # its claims are checked against what the knowledge base holds for the prompt
        return ModelTarget(general, ClaimCheck(GraphStore(db), KnowledgeBase(db)))
    if name == "ask":
        return AskTarget(db, general, KnowledgeBase(db))
    if name == "retrieval-mcq":
        return RetrievalMcqTarget(KnowledgeBase(db))
    graph = GraphStore(db)
    if name == "triage-graph":
        return TriageTarget(graph)
    if name == "consult":
        return ConsultTarget(graph)
    return FindingsTarget(graph)


def models_of(target: Target) -> dict[str, str]:
    """The model ids a run records for its manifest (none for the offline specialist paths)."""
    return get_general_model(get_settings()).describe() if target.kind != "specialist" else {}
