"""The targets by name — one place that builds them, for the CLI, the API and the job workers that
re-create a target in another process (or on another Ray node) from its name alone.

The platform's own targets (the bare model and the offline specialist paths) are listed here; every
app's targets come from its ``AppSpec.eval_targets`` through the app registry, so adding an app adds its
targets without editing this file."""

from __future__ import annotations

from collections.abc import Callable

from medfusion.agents.guardrails.claims import ClaimCheck
from medfusion.apps import registry as app_registry
from medfusion.errors import InvalidInput
from medfusion.evaluation.targets import (
    DeidTarget,
    GuardrailTarget,
    ModelTarget,
    RetrievalMcqTarget,
    Target,
    TriageTarget,
)
from medfusion.graph import Graph
from medfusion.knowledge import packs
from medfusion.knowledge.base import KnowledgeBase
from medfusion.llm import GeneralModel, get_general_model
from medfusion.settings import get_settings
from medfusion.store.database import Database, get_database

_PLATFORM = {
    "llm": "配置的通用大模型（裸模型）the configured general model, bare",
    "guardrails": "离线安全规则 offline safety rules",
    "retrieval-mcq": "离线检索选择题基线 offline retrieval baseline for MCQ",
    "triage-graph": "离线图谱分科 offline department from the graph",
    "deid": "离线去标识化 offline de-identification",
}
_OFFLINE: dict[str, type[GuardrailTarget] | type[DeidTarget]] = {
    "guardrails": GuardrailTarget,
    "deid": DeidTarget,
}
_BUILD: dict[str, Callable[[Database, GeneralModel], Target]] = {
    # the bare model's claims are checked against what the knowledge base holds for the prompt
    "llm": lambda db, general: ModelTarget(general, ClaimCheck(Graph(db), KnowledgeBase(db))),
    "retrieval-mcq": lambda db, general: RetrievalMcqTarget(KnowledgeBase(db)),
    "triage-graph": lambda db, general: TriageTarget(Graph(db)),
}


def targets() -> dict[str, str]:
    """Every target's name → description: the platform's, then each installed app's."""
    found = dict(_PLATFORM)
    for name, (_, target) in app_registry.eval_targets().items():
        found[name] = target.description
    return found


def check(name: str) -> None:
    """An unknown target is bad input, before anything runs."""
    if name not in targets():
        raise InvalidInput.for_field(
            "target", f"未知目标 unknown target {name}; see `medfusion eval list`", code="unknown_target"
        )


def needs_model(name: str) -> bool:
    """Whether target ``name`` cannot be built without a configured general model."""
    from_app = app_registry.eval_targets().get(name)
    return name == "llm" or (from_app is not None and from_app[1].needs_model)


def _database(url: str | None) -> Database:
    return get_database() if url in {None, get_settings().resolved_database_url} else Database(str(url))


def build(name: str, database_url: str | None = None) -> Target:
    """The target ``name``; its database (when it needs one) is this process's unless a job worker passes
    the URL it was given."""
    check(name)
    if name in _OFFLINE:
        return _OFFLINE[name]()
    general = get_general_model(get_settings())
    from_app = app_registry.eval_targets().get(name)
    if needs_model(name) and not general.available:
        raise InvalidInput.for_field(
            "target", "未配置通用大模型 no model configured (MEDFUSION_LLM_*)", code="no_model"
        )
    db = _database(database_url)
    packs.ensure_shipped(db)
    if from_app is not None:
        built: Target = from_app[1].build(db, general)
        return built
    return _BUILD[name](db, general)


def models_of(target: Target) -> dict[str, str]:
    """The model ids a run records for its manifest (none for the offline specialist paths)."""
    return get_general_model(get_settings()).describe() if target.kind != "specialist" else {}
