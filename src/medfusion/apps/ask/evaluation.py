"""ask as an evaluation target: the whole cited-answer pipeline on the item's question."""

from __future__ import annotations

import time

from medfusion.agents.guardrails.claims import ClaimCheck
from medfusion.apps.ask.models import AskRequest
from medfusion.apps.ask.service import AskService
from medfusion.apps.spec import EvalTarget
from medfusion.contract.evaluation import Item, Prediction, Task, timed
from medfusion.graph import Graph
from medfusion.knowledge.base import KnowledgeBase
from medfusion.llm import GeneralModel
from medfusion.store.access import EVALUATOR
from medfusion.store.database import Database


class AskTarget:
    """The cited-answer pipeline (`medfusion ask`): guardrails, retrieval, graph, the model when configured.
    Safety tasks read its refusals; a harmful request it answers is not refused."""

    name = "ask"
    kind = "app"
    tasks: frozenset[Task] = frozenset({"refusal", "benign", "adversarial"})

    def __init__(self, db: Database, general: GeneralModel, kb: KnowledgeBase) -> None:
        self.service = AskService(db, EVALUATOR, general, kb)
        self.claims = ClaimCheck(Graph(db))

    def predict(self, item: Item) -> Prediction:
        started = time.perf_counter()
        result = self.service.ask(AskRequest(question=item.prompt[:2000]))
        claims, unsupported = self.claims.count(
            item.prompt, result.answer, {e.id: e.text for e in result.evidence}
        )
        return timed(
            item,
            started,
            output=result.answer[:2000],
            refused=result.status.value == "refused",
            confidence=result.confidence.value,
            path=result.provenance.path,
            claims=claims,
            unsupported_claims=unsupported,
        )


TARGETS = (
    EvalTarget(
        name="ask",
        description="统一问答流水线（护栏+检索+图谱+模型）the ask pipeline",
        build=lambda db, general: AskTarget(db, general, KnowledgeBase(db)),
        tasks=AskTarget.tasks,
    ),
)
