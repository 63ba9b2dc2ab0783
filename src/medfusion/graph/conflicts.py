"""Conflict check: a proposed plan (drugs, procedures) against a patient's conditions and allergies.

Every conflict carries the graph path that explains it — e.g. 布洛芬 —member_of→ 非选择性非甾体抗炎药
—member_of→ 非甾体抗炎药 —interacts_with→ 抗凝药 ←member_of— 维生素K拮抗剂 ←member_of— 华法林 — with the
source and review status of the triple that asserts it. Items climb their ``member_of`` (drug → class,
condition → wider condition) and ``uses_agent`` (procedure → the drug it administers) edges, so a rule
written once for a class reaches every member. Where several rules explain the same pair, the most specific
one (shortest path) wins and, among equally specific ones, the most severe: a drug-level rule such as
"阿莫西林 ↔ 头孢羟氨苄: identical side chain" overrides the class-level "penicillins ↔ cephalosporins: low".
This is decided per pair of the request's terms, so a word naming both a drug and its class (青霉素) is
reported once.

Graded reassurance (``negligible``, ``none`` — e.g. sulfonamide-antibiotic allergy does not transfer to
furosemide) is reported as a note, not an alert. Nothing is decided here: every finding is assistive and
carries ``status: needs_clinician_confirmation``; terms the graph does not know are listed, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations

from pydantic import BaseModel, Field

from medfusion.graph import Graph
from medfusion.graph.model import NOT_AN_ALERT, SEVERITY_RANK, EntityType, Relation, Severity
from medfusion.graph.store import Edge, Entity
from medfusion.record.models import ConditionStatus, MedicationStatus, PatientChart

MAX_DEPTH = 4
RELATION_LABEL = {
    Relation.member_of.value: "属于",
    Relation.uses_agent.value: "使用",
    Relation.contraindicated_in.value: "禁忌于",
    Relation.interacts_with.value: "相互作用",
    Relation.cross_reacts_with.value: "交叉过敏",
}
ROLE_TYPES: dict[str, tuple[EntityType, ...]] = {
    "condition": (EntityType.disease, EntityType.symptom, EntityType.sign),
    "allergy": (EntityType.drug, EntityType.drug_class, EntityType.food),
    "drug": (EntityType.drug, EntityType.drug_class),
    "procedure": (EntityType.procedure,),
}


class PathStep(BaseModel):
    head: str
    relation: str
    tail: str
    source: str


class Conflict(BaseModel):
    type: str  # drug_interaction | contraindication | allergy | cross_reactivity
    severity: Severity
    items: list[str]  # the terms of the request that are involved
    path: list[PathStep]
    explanation: str
    source: str
    review_status: str | None = None
    note: str | None = None
    status: str = "needs_clinician_confirmation"

    def sentence(self) -> str:
        """One line for answers and warnings: 【severity】items：why（explaining path）."""
        items = " 与 ".join(self.items)
        return f"【{self.severity.value}】{items}：{self.note or self.type}（{self.explanation}）"


class Resolved(BaseModel):
    term: str
    role: str
    entities: list[str]


class ConflictReport(BaseModel):
    conflicts: list[Conflict]
    notes: list[Conflict] = Field(description="graded reassurance (negligible / none): not alerts")
    resolved: list[Resolved]
    unresolved: list[Resolved]
    engine: str = "specialist: knowledge graph (medfusion.graph)"
    status: str = "needs_clinician_confirmation"


class _Item(BaseModel):
    term: str
    role: str
    entity: Entity
    # every ancestor reachable by member_of / uses_agent, with the edges from the item to it
    reach: dict[str, tuple[Entity, list[Edge]]]


def _step(edge: Edge) -> PathStep:
    return PathStep(head=edge.head.name, relation=edge.relation, tail=edge.tail.name, source=edge.source)


def _explain(path: list[PathStep]) -> str:
    return "；".join(f"{s.head} —{RELATION_LABEL.get(s.relation, s.relation)}→ {s.tail}" for s in path)


class ConflictChecker:
    def __init__(self, graph: Graph) -> None:
        self.store = graph.store
        self.lexicon = graph.lexicon

    def _reach(self, entity: Entity) -> dict[str, tuple[Entity, list[Edge]]]:
        reach: dict[str, tuple[Entity, list[Edge]]] = {entity.id: (entity, [])}
        frontier = [entity.id]
        for _ in range(MAX_DEPTH):
            if not frontier:
                break
            edges = self.store.edges([Relation.member_of, Relation.uses_agent], heads=frontier)
            frontier = []
            for edge in edges:
                if edge.tail.id in reach:
                    continue
                reach[edge.tail.id] = (edge.tail, [*reach[edge.head.id][1], edge])
                frontier.append(edge.tail.id)
        return reach

    def _items(
        self,
        role: str,
        terms: Iterable[str | tuple[str, ...]],
        resolved: list[Resolved],
        unresolved: list[Resolved],
    ) -> list[_Item]:
        """A term may be a tuple of alternatives (a chart's name, then its code, then the code's
        category): the first one the graph knows is used."""
        items: list[_Item] = []
        for given in terms:
            choices = [c.strip() for c in ((given,) if isinstance(given, str) else given) if c and c.strip()]
            if not choices:
                continue
            term, entities = choices[0], []
            for choice in choices:
                entities = self.lexicon.resolve(choice, ROLE_TYPES[role])
                if entities:
                    break
            record = Resolved(term=term, role=role, entities=[f"{e.type}:{e.name}" for e in entities])
            (resolved if entities else unresolved).append(record)
            items.extend(_Item(term=term, role=role, entity=e, reach=self._reach(e)) for e in entities)
        return items

    def check_chart(
        self,
        chart: PatientChart,
        drugs: Iterable[str] = (),
        procedures: Iterable[str] = (),
        conditions: Iterable[str] = (),
        allergies: Iterable[str] = (),
    ) -> ConflictReport:
        """The chart's active conditions, its allergies and its active medications (which interact with
        what is proposed as much as the proposals do with each other)."""
        active = {ConditionStatus.active, ConditionStatus.recurrence, ConditionStatus.relapse}
        charted: list[str | tuple[str, ...]] = [
            (c.label, c.icd10_code, c.icd10_code.split(".")[0]) if c.icd10_code else c.label
            for c in chart.conditions
            if c.clinical_status in active
        ]
        current: list[str | tuple[str, ...]] = [
            (m.drug_name, m.atc_code or "") for m in chart.medications if m.status == MedicationStatus.active
        ]
        return self.check(
            [*charted, *conditions],
            [*(a.substance for a in chart.allergies), *allergies],
            [*current, *drugs],
            procedures,
        )

    def check(
        self,
        conditions: Iterable[str | tuple[str, ...]] = (),
        allergies: Iterable[str | tuple[str, ...]] = (),
        drugs: Iterable[str | tuple[str, ...]] = (),
        procedures: Iterable[str | tuple[str, ...]] = (),
    ) -> ConflictReport:
        resolved: list[Resolved] = []
        unresolved: list[Resolved] = []
        condition_items = self._items("condition", conditions, resolved, unresolved)
        allergy_items = self._items("allergy", allergies, resolved, unresolved)
        proposed = self._items("drug", drugs, resolved, unresolved) + self._items(
            "procedure", procedures, resolved, unresolved
        )
        best: dict[tuple[str, ...], Conflict] = {}

        def offer(key: tuple[str, ...], conflict: Conflict, length: int) -> None:
            current = best.get(key)
            rank = (length, -SEVERITY_RANK[conflict.severity])
            if current is None or rank < (len(current.path), -SEVERITY_RANK[current.severity]):
                best[key] = conflict

        def build(kind: str, items: list[str], path: list[Edge], rule: Edge, default: Severity) -> Conflict:
            steps = [_step(e) for e in path]
            return Conflict(
                type=kind,
                severity=Severity(rule.severity) if rule.severity else default,
                items=items,
                path=steps,
                explanation=_explain(steps),
                source=rule.source,
                review_status=rule.review_status,
                note=rule.note,
            )

        # contraindications: a proposed item (or its class / agent) against a condition (or a wider one)
        for item in proposed:
            for cond in condition_items:
                for rule in self.store.edges(
                    [Relation.contraindicated_in], heads=item.reach, tails=cond.reach
                ):
                    path = item.reach[rule.head.id][1] + [rule] + cond.reach[rule.tail.id][1][::-1]
                    offer(
                        ("contraindication", item.term, cond.term),
                        build(
                            "contraindication", [item.term, cond.term], path, rule, Severity.contraindicated
                        ),
                        len(path),
                    )
        # interactions between every two distinct proposed items (rules read both ways; a class rule
        # with itself as both ends, e.g. two QT-prolonging drugs, needs two different members)
        for first, second in combinations(proposed, 2):
            if first.entity.id == second.entity.id:
                continue
            for a, b in ((first, second), (second, first)):
                for rule in self.store.edges([Relation.interacts_with], heads=a.reach, tails=b.reach):
                    path = a.reach[rule.head.id][1] + [rule] + b.reach[rule.tail.id][1][::-1]
                    key = ("drug_interaction", *sorted((first.term, second.term)))
                    offer(
                        key,
                        build("drug_interaction", [a.term, b.term], path, rule, Severity.moderate),
                        len(path),
                    )
        # allergies: the allergen itself (or its class) in what is proposed, then graded cross-reactivity
        for allergen in allergy_items:
            for item in proposed:
                key = ("allergy", allergen.term, item.term)
                if allergen.entity.id in item.reach:
                    path = item.reach[allergen.entity.id][1]
                    steps = [_step(e) for e in path]
                    offer(
                        key,
                        Conflict(
                            type="allergy",
                            severity=Severity.high,
                            items=[allergen.term, item.term],
                            path=steps,
                            explanation=_explain(steps) or f"{item.term} 即过敏原 {allergen.term}",
                            source="patient allergy list",
                            note="过敏原与拟用药物/操作相同或属于该类；请核实过敏史（反应类型、时间）",
                        ),
                        len(path),
                    )
                    continue
                for x, y, flip in ((allergen, item, False), (item, allergen, True)):
                    for rule in self.store.edges([Relation.cross_reacts_with], heads=x.reach, tails=y.reach):
                        path = x.reach[rule.head.id][1] + [rule] + y.reach[rule.tail.id][1][::-1]
                        if flip:
                            path = path[::-1]
                        offer(
                            key,
                            build("cross_reactivity", [allergen.term, item.term], path, rule, Severity.low),
                            len(path),
                        )
        found = sorted(best.values(), key=lambda c: (-SEVERITY_RANK[c.severity], c.type, c.items))
        return ConflictReport(
            conflicts=[c for c in found if c.severity not in NOT_AN_ALERT],
            notes=[c for c in found if c.severity in NOT_AN_ALERT],
            resolved=resolved,
            unresolved=unresolved,
        )
