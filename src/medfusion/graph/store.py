"""The embedded graph store (SQLite tables by default, PostgreSQL by URL) and its queries.

Queries: neighbours of an entity; diseases ranked by observed symptoms — each symptom weighted by its
specificity (inverse of how many diseases list it), with the symptoms that support each disease and its
listed symptoms that were not observed; and the departments for a set of diseases or symptoms.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from pydantic import BaseModel
from sqlalchemy import func, insert, select
from sqlalchemy.orm import aliased

from medfusion.graph.model import EntityType, Relation, Triple, entity_id
from medfusion.store.database import Database
from medfusion.store.tables import GraphEntityRow, GraphRelationRow

BATCH = 5000


class Neighbour(BaseModel):
    relation: str
    direction: str  # out | in
    name: str
    type: str
    source: str
    severity: str | None = None


class DiseaseCandidate(BaseModel):
    disease: str
    score: float
    supporting: list[str]
    not_observed: list[str]
    departments: list[str]


class ImportCounts(BaseModel):
    triples: int
    new_entities: int
    new_relations: int
    by_relation: dict[str, int]


class GraphStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, triples: Iterable[Triple]) -> ImportCounts:
        """Idempotent: entities and triples already present are skipped."""
        total = new_entities = new_relations = 0
        by_relation: Counter[str] = Counter()
        batch: list[Triple] = []

        def flush() -> None:
            nonlocal new_entities, new_relations
            if not batch:
                return
            with self.db.session() as session:
                entities = {}
                for t in batch:
                    entities[entity_id(t.head_type, t.head)] = (t.head_type.value, t.head)
                    entities[entity_id(t.tail_type, t.tail)] = (t.tail_type.value, t.tail)
                have = set(
                    session.execute(
                        select(GraphEntityRow.id).where(GraphEntityRow.id.in_(entities))
                    ).scalars()
                )
                fresh = [{"id": k, "type": v[0], "name": v[1]} for k, v in entities.items() if k not in have]
                if fresh:
                    session.execute(insert(GraphEntityRow), fresh)
                new_entities += len(fresh)
                keys = {
                    (
                        entity_id(t.head_type, t.head),
                        t.relation.value,
                        entity_id(t.tail_type, t.tail),
                        t.source,
                    ): t
                    for t in batch
                }
                existing = set(
                    session.execute(
                        select(
                            GraphRelationRow.head_id,
                            GraphRelationRow.relation,
                            GraphRelationRow.tail_id,
                            GraphRelationRow.source,
                        ).where(GraphRelationRow.head_id.in_({k[0] for k in keys}))
                    ).all()
                )
                rows = [
                    {
                        "head_id": k[0],
                        "relation": k[1],
                        "tail_id": k[2],
                        "source": k[3],
                        "severity": t.severity,
                    }
                    for k, t in keys.items()
                    if tuple(k) not in existing
                ]
                if rows:
                    session.execute(insert(GraphRelationRow), rows)
                new_relations += len(rows)
            batch.clear()

        for triple in triples:
            total += 1
            by_relation[triple.relation.value] += 1
            batch.append(triple)
            if len(batch) >= BATCH:
                flush()
        flush()
        return ImportCounts(
            triples=total,
            new_entities=new_entities,
            new_relations=new_relations,
            by_relation=dict(by_relation),
        )

    def counts(self) -> dict[str, dict[str, int]]:
        with self.db.read_session() as session:
            entities = dict(
                session.execute(select(GraphEntityRow.type, func.count()).group_by(GraphEntityRow.type)).all()
            )
            relations = dict(
                session.execute(
                    select(GraphRelationRow.relation, func.count()).group_by(GraphRelationRow.relation)
                ).all()
            )
        return {"entities": entities, "relations": relations}

    def neighbours(self, name: str, relation: Relation | None = None, limit: int = 200) -> list[Neighbour]:
        head, tail = aliased(GraphEntityRow), aliased(GraphEntityRow)
        out: list[Neighbour] = []
        with self.db.read_session() as session:
            for direction, me, other, me_col, other_col in (
                ("out", head, tail, GraphRelationRow.head_id, GraphRelationRow.tail_id),
                ("in", tail, head, GraphRelationRow.tail_id, GraphRelationRow.head_id),
            ):
                query = (
                    select(GraphRelationRow, other)
                    .join(me, me.id == me_col)
                    .join(other, other.id == other_col)
                    .where(me.name == name)
                    .limit(limit)
                )
                if relation is not None:
                    query = query.where(GraphRelationRow.relation == relation.value)
                for rel, entity in session.execute(query).all():
                    out.append(
                        Neighbour(
                            relation=rel.relation,
                            direction=direction,
                            name=entity.name,
                            type=entity.type,
                            source=rel.source,
                            severity=rel.severity,
                        )
                    )
        return out

    def diseases_for_symptoms(self, symptoms: list[str], k: int = 10) -> list[DiseaseCandidate]:
        disease, symptom = aliased(GraphEntityRow), aliased(GraphEntityRow)
        wanted = {s.strip() for s in symptoms if s.strip()}
        if not wanted:
            return []
        with self.db.read_session() as session:
            total = (
                session.execute(
                    select(func.count())
                    .select_from(GraphEntityRow)
                    .where(GraphEntityRow.type == EntityType.disease.value)
                ).scalar_one()
                or 1
            )
            spread = dict(
                session.execute(
                    select(symptom.name, func.count())
                    .join(GraphRelationRow, GraphRelationRow.tail_id == symptom.id)
                    .where(GraphRelationRow.relation == Relation.has_symptom.value, symptom.name.in_(wanted))
                    .group_by(symptom.name)
                ).all()
            )
            hits = session.execute(
                select(disease.name, symptom.name)
                .join(GraphRelationRow, GraphRelationRow.head_id == disease.id)
                .join(symptom, symptom.id == GraphRelationRow.tail_id)
                .where(GraphRelationRow.relation == Relation.has_symptom.value, symptom.name.in_(wanted))
            ).all()
            scores: dict[str, float] = defaultdict(float)
            support: dict[str, list[str]] = defaultdict(list)
            for name, found in hits:
                scores[name] += math.log(1 + total / spread.get(found, 1))
                support[name].append(found)
            ranked = sorted(scores, key=lambda d: (-scores[d], d))[:k]
            result = []
            for name in ranked:
                listed = [n.name for n in self.neighbours(name, Relation.has_symptom) if n.direction == "out"]
                departments = [
                    n.name
                    for n in self.neighbours(name, Relation.belongs_to_department)
                    if n.direction == "out"
                ]
                result.append(
                    DiseaseCandidate(
                        disease=name,
                        score=round(scores[name], 4),
                        supporting=sorted(support[name]),
                        not_observed=[s for s in listed if s not in wanted],
                        departments=departments,
                    )
                )
        return result

    def departments_for(self, names: list[str]) -> list[tuple[str, int]]:
        """Departments for diseases, or for the diseases that symptoms point at."""
        votes: Counter[str] = Counter()
        for name in names:
            direct = [
                n.name for n in self.neighbours(name, Relation.belongs_to_department) if n.direction == "out"
            ]
            if direct:
                votes.update(direct)
                continue
            for candidate in self.diseases_for_symptoms([name], k=5):
                votes.update(candidate.departments)
        return votes.most_common()
