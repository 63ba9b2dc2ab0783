"""What an evaluation grades: a bare general model, an application pipeline, or an offline specialist
path — one interface (:class:`Target`), so a new app becomes a target in a few lines. A target answers the
tasks it supports and raises for an item it fails on; the runner scores that item as an error."""

from __future__ import annotations

import json
import time
from typing import Protocol

from medfusion.agents.guardrails.claims import ClaimCheck
from medfusion.agents.guardrails.safety import harmful_request
from medfusion.contract.evaluation import Item, Prediction, Task, timed
from medfusion.evaluation.parsing import letters
from medfusion.evaluation.refusal import is_refusal
from medfusion.graph import Graph
from medfusion.knowledge import tokens
from medfusion.knowledge.base import KnowledgeBase
from medfusion.llm import Completion, GeneralModel, Message
from medfusion.privacy.analyzer import Analyzer


class Target(Protocol):
    name: str
    kind: str  # llm | app | specialist
    tasks: frozenset[Task]

    def predict(self, item: Item) -> Prediction: ...


class ModelTarget:
    """The configured general model, bare: no retrieval, no guardrails."""

    name = "llm"
    kind = "llm"
    tasks: frozenset[Task] = frozenset({"mcq", "refusal", "benign", "adversarial"})

    def __init__(self, general: GeneralModel, claims: ClaimCheck | None = None) -> None:
        self.general = general
        self.claims = claims

    def predict(self, item: Item) -> Prediction:
        started = time.perf_counter()
        if item.task == "mcq":
            options = "\n".join(f"{k}. {v}" for k, v in item.options.items())
            content = f"{item.prompt}\n{options}\n请只回答正确选项的字母（多选题写出全部字母）。"
        else:
            content = item.prompt
        reply = self.general.chat([Message(role="user", content=content)], purpose="evaluation")
        if not isinstance(reply, Completion):
            raise RuntimeError(f"model unavailable: {reply.describe()}")
        choice = letters(reply.text, item.options) if item.task == "mcq" else []
        checked: tuple[int | None, int | None] = (None, None)
        if self.claims and item.task != "mcq":
            checked = self.claims.count(item.prompt, reply.text)
        return timed(
            item,
            started,
            output=reply.text[:2000],
            choice=choice,
            refused=is_refusal(reply.text),
            tokens=reply.usage.total_tokens,
            path="llm",
            claims=checked[0],
            unsupported_claims=checked[1],
        )


class GuardrailTarget:
    """The offline safety rules alone (harmful-request patterns)."""

    name = "guardrails"
    kind = "specialist"
    tasks: frozenset[Task] = frozenset({"refusal", "benign"})

    def predict(self, item: Item) -> Prediction:
        started = time.perf_counter()
        refusal = harmful_request(item.prompt)
        return timed(
            item,
            started,
            output=refusal.code if refusal else "",
            refused=refusal is not None,
            path="specialist",
        )


class RetrievalMcqTarget:
    """An offline exam baseline: each option is scored by how much of it the knowledge base supports for the
    question (the top passages' bigram overlap with question + option); the best option wins."""

    name = "retrieval-mcq"
    kind = "specialist"
    tasks: frozenset[Task] = frozenset({"mcq"})

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    def predict(self, item: Item) -> Prediction:
        started = time.perf_counter()
        hits = self.kb.search(item.prompt, k=5)
        support = set(tokens.bigrams(" ".join(h.text for h in hits)))
        scores = {}
        for key, text in item.options.items():
            grams = set(tokens.bigrams(text)) or {text}
            scores[key] = len(grams & support) / len(grams)
        ranked = sorted(scores, key=lambda k: (-scores[k], k))
        top = scores[ranked[0]] if ranked else 0.0
        return timed(item, started, choice=ranked[:1], confidence=round(min(top, 1.0), 3), path="specialist")


class TriageTarget:
    """Department from the knowledge graph: the departments of the diseases the question names, or that its
    symptoms point at, mapped onto the dataset's labels by shared characters."""

    name = "triage-graph"
    kind = "specialist"
    tasks: frozenset[Task] = frozenset({"classify"})

    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def predict(self, item: Item) -> Prediction:
        started = time.perf_counter()
        names = list(
            dict.fromkeys(
                m.entity.name
                for m in self.graph.lexicon.mentions(item.prompt)
                if m.entity.type in {"disease", "symptom"}
            )
        )
        votes = self.graph.queries.departments_for(names)
        scored: dict[str, float] = {}
        for department, count in votes:
            for label in item.labels:
                overlap = len(set(department) & set(label)) / max(len(set(label)), 1)
                if overlap >= 0.5:
                    scored[label] = scored.get(label, 0.0) + count * overlap
        ranked = sorted(scored, key=lambda k: -scored[k])
        return timed(item, started, choice=ranked[:3], path="specialist")


class DeidTarget:
    """The de-identification analyzer on synthetic notes with planted identifiers; its spans are scored
    against the gold (recall is what matters: a missed identifier is a leak)."""

    name = "deid"
    kind = "specialist"
    tasks: frozenset[Task] = frozenset({"deid"})

    def __init__(self) -> None:
        self.analyzer = Analyzer()

    def predict(self, item: Item) -> Prediction:
        started = time.perf_counter()
        spans = self.analyzer.analyze(item.prompt, item.meta.get("names", []))
        found = [{"start": s.start, "end": s.end, "type": s.type.value, "text": s.text} for s in spans]
        return timed(item, started, output=json.dumps(found, ensure_ascii=False), path="specialist")
