"""What an evaluation grades: a bare general model, an application pipeline, or an offline specialist
path — one interface (:class:`Target`), so a new app becomes a target in a few lines. A target answers the
tasks it supports and raises for an item it fails on; the runner scores that item as an error."""

from __future__ import annotations

import json
import time
from typing import Protocol

from medfusion.agents.ask import AskRequest, AskService
from medfusion.agents.guardrails.safety import harmful_request
from medfusion.apps.consult.findings import from_terms, parse
from medfusion.apps.consult.ranking import rank
from medfusion.evaluation.grounding import ClaimCheck
from medfusion.evaluation.items import Item, Prediction, Task
from medfusion.evaluation.parsing import letters
from medfusion.evaluation.refusal import is_refusal
from medfusion.graph.store import GraphStore
from medfusion.knowledge import tokens
from medfusion.knowledge.base import KnowledgeBase
from medfusion.llm import Completion, GeneralModel, Message
from medfusion.privacy.analyzer import Analyzer
from medfusion.store.access import Principal
from medfusion.store.database import Database

EVALUATOR = Principal("evaluation", "system")


class Target(Protocol):
    name: str
    kind: str  # llm | app | specialist
    tasks: frozenset[Task]

    def predict(self, item: Item) -> Prediction: ...


def _timed(item: Item, started: float, **fields: object) -> Prediction:
    return Prediction(item_id=item.id, latency_ms=round((time.perf_counter() - started) * 1000, 2), **fields)


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
        return _timed(
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


class AskTarget:
    """The cited-answer pipeline (`medfusion ask`): guardrails, retrieval, graph, the model when configured.
    Safety tasks read its refusals; a harmful request it answers is not refused."""

    name = "ask"
    kind = "app"
    tasks: frozenset[Task] = frozenset({"refusal", "benign", "adversarial"})

    def __init__(self, db: Database, general: GeneralModel, kb: KnowledgeBase) -> None:
        self.service = AskService(db, EVALUATOR, general, kb)
        self.claims = ClaimCheck(GraphStore(db))

    def predict(self, item: Item) -> Prediction:
        started = time.perf_counter()
        result = self.service.ask(AskRequest(question=item.prompt[:2000]))
        claims, unsupported = self.claims.count(
            item.prompt, result.answer, {e.id: e.text for e in result.evidence}
        )
        return _timed(
            item,
            started,
            output=result.answer[:2000],
            refused=result.status.value == "refused",
            confidence=result.confidence.value,
            path=result.provenance.path,
            claims=claims,
            unsupported_claims=unsupported,
        )


class GuardrailTarget:
    """The offline safety rules alone (harmful-request patterns)."""

    name = "guardrails"
    kind = "specialist"
    tasks: frozenset[Task] = frozenset({"refusal", "benign"})

    def predict(self, item: Item) -> Prediction:
        started = time.perf_counter()
        refusal = harmful_request(item.prompt)
        return _timed(
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
        return _timed(item, started, choice=ranked[:1], confidence=round(min(top, 1.0), 3), path="specialist")


class TriageTarget:
    """Department from the knowledge graph: the departments of the diseases the question names, or that its
    symptoms point at, mapped onto the dataset's labels by shared characters."""

    name = "triage-graph"
    kind = "specialist"
    tasks: frozenset[Task] = frozenset({"classify"})

    def __init__(self, graph: GraphStore) -> None:
        self.graph = graph

    def predict(self, item: Item) -> Prediction:
        started = time.perf_counter()
        names = list(
            dict.fromkeys(
                m.entity.name
                for m in self.graph.mentions(item.prompt)
                if m.entity.type in {"disease", "symptom"}
            )
        )
        votes = self.graph.departments_for(names)
        scored: dict[str, float] = {}
        for department, count in votes:
            for label in item.labels:
                overlap = len(set(department) & set(label)) / max(len(set(label)), 1)
                if overlap >= 0.5:
                    scored[label] = scored.get(label, 0.0) + count * overlap
        ranked = sorted(scored, key=lambda k: -scored[k])
        return _timed(item, started, choice=ranked[:3], path="specialist")


class ConsultTarget:
    """The pocket chief physician's differential over the item's closed label set."""

    name = "consult"
    kind = "app"
    tasks: frozenset[Task] = frozenset({"diagnose"})

    def __init__(self, graph: GraphStore) -> None:
        self.graph = graph
        self._diseases = sorted(
            {n for n, es in graph.lexicon().items() for e in es if e.type == "disease"}, key=len
        )
        self._names: dict[str, str] = {}

    def _disease(self, label: str) -> str:
        """A dataset label → the graph's disease: by name or synonym, else the closest name containing it
        (上呼吸道感染 → 急性上呼吸道感染) or contained in it (小儿手足口病 → 手足口病)."""
        if label not in self._names:
            resolved = [e.name for e in self.graph.resolve(label) if e.type == "disease"]
            near = [n for n in self._diseases if label in n] or [
                n for n in reversed(self._diseases) if n in label
            ]
            self._names[label] = resolved[0] if resolved else (near[0] if near else label)
        return self._names[label]

    def predict(self, item: Item) -> Prediction:
        started = time.perf_counter()
        found = from_terms(self.graph, list(item.meta.get("present", [])), list(item.meta.get("absent", [])))
        candidates = {label: self._disease(label) for label in item.labels}
        by_graph = {v: k for k, v in candidates.items()}
        ranked = rank(self.graph, found.present, found.absent, candidates=list(candidates.values()))
        choice = [by_graph[r.disease] for r in ranked if r.disease in by_graph]
        confidence = ranked[0].probability if ranked else None
        return _timed(item, started, choice=choice, confidence=confidence, path="specialist")


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
        return _timed(item, started, output=json.dumps(found, ensure_ascii=False), path="specialist")


class FindingsTarget:
    """The pocket chief physician's negation-aware findings reader on the patient's turns of a dialogue:
    each symptom the graph knows, present (阳性) or denied (阴性), named in the dataset's vocabulary."""

    name = "findings"
    kind = "specialist"
    tasks: frozenset[Task] = frozenset({"extract"})

    def __init__(self, graph: GraphStore) -> None:
        self.graph = graph
        self._vocabulary: dict[tuple[str, ...], dict[str, str]] = {}

    def _names(self, labels: list[str]) -> dict[str, str]:
        """The graph's preferred symptom name → the dataset's term (心悸 → 心慌)."""
        key = tuple(labels)
        if key not in self._vocabulary:
            mapped: dict[str, str] = {}
            for term in labels:
                for entity in self.graph.resolve(term):
                    if entity.type == "symptom":
                        mapped.setdefault(entity.name, term)
                mapped.setdefault(term, term)
            self._vocabulary[key] = mapped
        return self._vocabulary[key]

    def predict(self, item: Item) -> Prediction:
        started = time.perf_counter()
        names = self._names(item.labels)
        found: dict[str, str] = {}
        for turn in item.prompt.splitlines():
            if not turn.startswith("患者"):
                continue
            parsed = parse(self.graph, turn.split(":", 1)[-1])
            for symptom in parsed.present:
                if symptom in names:
                    found[names[symptom]] = "阳性"
            for symptom in parsed.absent:
                if symptom in names:
                    found.setdefault(names[symptom], "阴性")
        return _timed(item, started, choice=sorted(f"{k}:{v}" for k, v in found.items()), path="specialist")
