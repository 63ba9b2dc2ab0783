"""The pocket chief physician as evaluation targets: its differential over an item's closed label set
(``consult``), and its negation-aware findings reader on dialogues (``findings``)."""

from __future__ import annotations

import time

from medfusion.apps.consult.findings import from_terms, parse
from medfusion.apps.spec import EvalTarget
from medfusion.contract.evaluation import Item, Prediction, Task, timed
from medfusion.graph import Graph
from medfusion.graph.model import EntityType


class ConsultTarget:
    """The pocket chief physician's differential over the item's closed label set."""

    name = "consult"
    kind = "app"
    tasks: frozenset[Task] = frozenset({"diagnose"})

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._names: dict[str, str] = {}

    def _disease(self, label: str) -> str:
        """A dataset label → the graph's disease: by name or synonym, else the closest name containing it
        (上呼吸道感染 → 急性上呼吸道感染) or contained in it (小儿手足口病 → 手足口病)."""
        if label not in self._names:
            found = self.graph.lexicon.resolve_term(EntityType.disease, label, containment=True)
            self._names[label] = found.name if found else label
        return self._names[label]

    def predict(self, item: Item) -> Prediction:
        started = time.perf_counter()
        found = from_terms(self.graph, list(item.meta.get("present", [])), list(item.meta.get("absent", [])))
        candidates = {label: self._disease(label) for label in item.labels}
        by_graph = {v: k for k, v in candidates.items()}
        ranked = self.graph.queries.rank_by_naive_bayes(
            found.present, found.absent, candidates=list(candidates.values())
        )
        choice = [by_graph[r.disease] for r in ranked if r.disease in by_graph]
        confidence = ranked[0].probability if ranked else None
        return timed(item, started, choice=choice, confidence=confidence, path="specialist")


class FindingsTarget:
    """The pocket chief physician's negation-aware findings reader on the patient's turns of a dialogue:
    each symptom the graph knows, present (阳性) or denied (阴性), named in the dataset's vocabulary."""

    name = "findings"
    kind = "specialist"
    tasks: frozenset[Task] = frozenset({"extract"})

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._vocabulary: dict[tuple[str, ...], dict[str, str]] = {}

    def _names(self, labels: list[str]) -> dict[str, str]:
        """The graph's preferred symptom name → the dataset's term (心悸 → 心慌)."""
        key = tuple(labels)
        if key not in self._vocabulary:
            mapped: dict[str, str] = {}
            for term in labels:
                for entity in self.graph.lexicon.resolve(term):
                    if entity.type == EntityType.symptom.value:
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
        return timed(item, started, choice=sorted(f"{k}:{v}" for k, v in found.items()), path="specialist")


TARGETS = (
    EvalTarget(
        name="consult",
        description="口袋主任医师鉴别诊断 pocket chief physician differential",
        build=lambda db, general: ConsultTarget(Graph(db)),
        tasks=ConsultTarget.tasks,
    ),
    EvalTarget(
        name="findings",
        description="对话症状与阴阳性抽取 symptom findings from dialogue",
        build=lambda db, general: FindingsTarget(Graph(db)),
        tasks=FindingsTarget.tasks,
    ),
)
