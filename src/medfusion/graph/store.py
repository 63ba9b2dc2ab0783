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
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import aliased

from medfusion.graph.model import EntityCode, EntityType, Relation, Triple, entity_id
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
    review_status: str | None = None
    note: str | None = None


class Entity(BaseModel):
    id: str
    name: str
    type: str
    code_system: str | None = None
    code: str | None = None


class Edge(BaseModel):
    """A stored triple with both ends resolved, as conflict paths and API answers show it."""

    head: Entity
    relation: str
    tail: Entity
    source: str
    severity: str | None = None
    review_status: str | None = None
    note: str | None = None


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


class Mention(BaseModel):
    surface: str  # the words as written
    start: int
    entity: Entity  # the preferred entity they stand for


class GraphStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._lexicon: tuple[tuple[int, int], dict[str, list[Entity]]] | None = None

    def add(self, triples: Iterable[Triple], pack: str | None = None) -> ImportCounts:
        """Idempotent: entities and triples already present are skipped. ``pack`` marks triples a
        knowledge pack brought, so removing the pack removes them."""
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
                        "severity": t.severity.value if t.severity else None,
                        "review_status": t.review_status,
                        "note": t.note,
                        "pack": pack,
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

    def remove_pack(self, pack: str) -> int:
        """Remove the triples a pack brought (entities stay: other triples may use them)."""
        with self.db.session() as session:
            result = session.execute(delete(GraphRelationRow).where(GraphRelationRow.pack == pack))
            return int(getattr(result, "rowcount", 0) or 0)

    def add_codes(self, entries: Iterable[EntityCode], source: str, pack: str | None = None) -> ImportCounts:
        """Codes and synonyms for entities (created when missing); each synonym becomes a
        ``synonym_of`` triple pointing at the entry's name, with ``source``."""
        coded = created = 0
        synonyms: list[Triple] = []
        batch: list[EntityCode] = []

        def flush() -> None:
            nonlocal coded, created
            if not batch:
                return
            with self.db.session() as session:
                by_id = {entity_id(e.type, e.name): e for e in batch}
                rows = {
                    row.id: row
                    for row in session.execute(
                        select(GraphEntityRow).where(GraphEntityRow.id.in_(by_id))
                    ).scalars()
                }
                fresh = []
                for key, entry in by_id.items():
                    row = rows.get(key)
                    if row is None:
                        fresh.append(
                            {
                                "id": key,
                                "type": entry.type.value,
                                "name": entry.name,
                                "code_system": entry.code_system,
                                "code": entry.code,
                            }
                        )
                    elif entry.code and (row.code, row.code_system) != (entry.code, entry.code_system):
                        row.code, row.code_system = entry.code, entry.code_system
                        coded += 1
                if fresh:
                    session.execute(insert(GraphEntityRow), fresh)
                created += len(fresh)
                coded += sum(1 for f in fresh if f["code"])
            batch.clear()

        for entry in entries:
            batch.append(entry)
            synonyms.extend(
                Triple(
                    head=alias,
                    head_type=entry.type,
                    relation=Relation.synonym_of,
                    tail=entry.name,
                    tail_type=entry.type,
                    source=source,
                )
                for alias in entry.synonyms
                if alias and alias != entry.name
            )
            if len(batch) >= BATCH:
                flush()
        flush()
        counts = self.add(synonyms, pack=pack)
        return ImportCounts(
            triples=counts.triples,
            new_entities=created + counts.new_entities,
            new_relations=counts.new_relations,
            by_relation={**counts.by_relation, "coded_entities": coded},
        )

    def resolve(self, term: str, types: Iterable[EntityType] | None = None) -> list[Entity]:
        """Entities a clinician's word stands for: exact name, code (case-insensitive), or a synonym
        resolved to its preferred name. Several types may share a name (a drug and its class)."""
        term = term.strip()
        if not term:
            return []
        wanted = [t.value for t in types] if types else None
        with self.db.read_session() as session:
            query = select(GraphEntityRow).where(
                (GraphEntityRow.name == term) | (func.upper(GraphEntityRow.code) == term.upper())
            )
            if wanted:
                query = query.where(GraphEntityRow.type.in_(wanted))
            found = [_entity(r) for r in session.execute(query).scalars()]
            alias, preferred = aliased(GraphEntityRow), aliased(GraphEntityRow)
            via_alias = (
                select(alias.id, preferred)
                .join(GraphRelationRow, GraphRelationRow.tail_id == preferred.id)
                .join(alias, alias.id == GraphRelationRow.head_id)
                .where(GraphRelationRow.relation == Relation.synonym_of.value, alias.name == term)
            )
            if wanted:
                via_alias = via_alias.where(preferred.type.in_(wanted))
            aliases: set[str] = set()
            for alias_id, row in session.execute(via_alias).all():
                aliases.add(alias_id)
                found.append(_entity(row))
            # an alias stands for its preferred entity, not for itself — unless it carries knowledge of
            # its own (two packs may each prefer one name and attach rules to it: 消化道出血 / 上消化道出血)
            if aliases:
                aliases -= set(
                    session.execute(
                        select(GraphRelationRow.head_id).where(
                            GraphRelationRow.head_id.in_(aliases),
                            GraphRelationRow.relation != Relation.synonym_of.value,
                        )
                    ).scalars()
                ) | set(
                    session.execute(
                        select(GraphRelationRow.tail_id).where(
                            GraphRelationRow.tail_id.in_(aliases),
                            GraphRelationRow.relation != Relation.synonym_of.value,
                        )
                    ).scalars()
                )
        unique = {e.id: e for e in found if e.id not in aliases}
        return sorted(unique.values(), key=lambda e: (e.type, e.name))

    def lexicon(self) -> dict[str, list[Entity]]:
        """Every name and alias → the preferred entities, rebuilt when the graph changes."""
        with self.db.read_session() as session:
            version = (
                session.execute(select(func.count()).select_from(GraphEntityRow)).scalar_one(),
                session.execute(select(func.count()).select_from(GraphRelationRow)).scalar_one(),
            )
            if self._lexicon is not None and self._lexicon[0] == version:
                return self._lexicon[1]
            entities = {row.id: _entity(row) for row in session.execute(select(GraphEntityRow)).scalars()}
            aliases = session.execute(
                select(GraphRelationRow.head_id, GraphRelationRow.tail_id).where(
                    GraphRelationRow.relation == Relation.synonym_of.value
                )
            ).all()
        names: dict[str, list[Entity]] = defaultdict(list)
        alias_ids = {alias for alias, _ in aliases}
        for entity in entities.values():
            if entity.id not in alias_ids:  # an alias stands for its preferred entity only
                names[entity.name].append(entity)
        for alias, preferred in aliases:
            if alias in entities and preferred in entities:
                names[entities[alias].name].append(entities[preferred])
        lexicon = {name: list({e.id: e for e in found}.values()) for name, found in names.items()}
        self._lexicon = (version, lexicon)
        return lexicon

    def mentions(self, text: str, longest: int = 16) -> list[Mention]:
        """Entities named in free text, by forward maximum matching over names and aliases."""
        lexicon = self.lexicon()
        found: list[Mention] = []
        position = 0
        while position < len(text):
            for size in range(min(longest, len(text) - position), 1, -1):
                surface = text[position : position + size]
                if surface in lexicon:
                    found.extend(Mention(surface=surface, start=position, entity=e) for e in lexicon[surface])
                    position += size
                    break
            else:
                position += 1
        return found

    def synonyms(self, name: str) -> list[str]:
        """Every name the same entity goes by (preferred name and aliases), for query expansion."""
        names = {name}
        for entity in self.resolve(name):
            names.add(entity.name)
            names.update(
                n.name
                for n in self.neighbours(entity.name, Relation.synonym_of)
                if n.direction == "in" and n.type == entity.type
            )
        return sorted(names)

    def edges(
        self,
        relations: Iterable[Relation],
        heads: Iterable[str] | None = None,
        tails: Iterable[str] | None = None,
    ) -> list[Edge]:
        """Triples of the given relations whose head (and/or tail) id is in the given sets."""
        head, tail = aliased(GraphEntityRow), aliased(GraphEntityRow)
        query = (
            select(GraphRelationRow, head, tail)
            .join(head, head.id == GraphRelationRow.head_id)
            .join(tail, tail.id == GraphRelationRow.tail_id)
            .where(GraphRelationRow.relation.in_([r.value for r in relations]))
        )
        if heads is not None:
            query = query.where(GraphRelationRow.head_id.in_(list(heads)))
        if tails is not None:
            query = query.where(GraphRelationRow.tail_id.in_(list(tails)))
        with self.db.read_session() as session:
            return [
                Edge(
                    head=_entity(h),
                    relation=rel.relation,
                    tail=_entity(t),
                    source=rel.source,
                    severity=rel.severity,
                    review_status=rel.review_status,
                    note=rel.note,
                )
                for rel, h, t in session.execute(query).all()
            ]

    def path(
        self, start: str, goal: str, max_hops: int = 3, relations: Iterable[Relation] | None = None
    ) -> list[Edge]:
        """A shortest typed path between two named entities (edges read either way), breadth first and
        bounded: at most ``max_hops`` edges and a few thousand entities per level."""
        wanted = list(relations) if relations else list(Relation)
        sources = {e.id for e in self.resolve(start)}
        targets = {e.id for e in self.resolve(goal)}
        if not sources or not targets:
            return []
        came: dict[str, Edge | None] = dict.fromkeys(sources)
        frontier = list(sources)
        for _ in range(max_hops):
            if not frontier:
                break
            step = self.edges(wanted, heads=frontier) + self.edges(wanted, tails=frontier)
            current = set(frontier)
            nxt: list[str] = []
            for edge in step:
                for here, there in ((edge.head.id, edge.tail.id), (edge.tail.id, edge.head.id)):
                    if here in current and there not in came:
                        came[there] = edge
                        nxt.append(there)
            hit = next((t for t in nxt if t in targets), None)
            if hit is not None:
                chain: list[Edge] = []
                node = hit
                while (back := came[node]) is not None:
                    chain.append(back)
                    node = back.tail.id if back.head.id == node else back.head.id
                return chain[::-1]
            frontier = nxt[:5000]
        return []

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
                            review_status=rel.review_status,
                            note=rel.note,
                        )
                    )
        return out

    def _symptom_scores(self, wanted: set[str]) -> tuple[dict[str, float], dict[str, list[str]]]:
        """IDF-weighted votes of the given symptoms for every disease that lists one of them."""
        disease, symptom = aliased(GraphEntityRow), aliased(GraphEntityRow)
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
        return scores, support

    def disease_names_for_symptoms(self, symptoms: list[str], k: int = 10) -> list[str]:
        """The diseases ``diseases_for_symptoms`` would rank first, names only (no per-disease lookups)."""
        wanted = {s.strip() for s in symptoms if s.strip()}
        if not wanted:
            return []
        scores, _ = self._symptom_scores(wanted)
        return sorted(scores, key=lambda d: (-scores[d], d))[:k]

    def diseases_for_symptoms(self, symptoms: list[str], k: int = 10) -> list[DiseaseCandidate]:
        wanted = {s.strip() for s in symptoms if s.strip()}
        if not wanted:
            return []
        scores, support = self._symptom_scores(wanted)
        ranked = sorted(scores, key=lambda d: (-scores[d], d))[:k]
        result = []
        for name in ranked:
            listed = [n.name for n in self.neighbours(name, Relation.has_symptom) if n.direction == "out"]
            departments = [
                n.name for n in self.neighbours(name, Relation.belongs_to_department) if n.direction == "out"
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


def _entity(row: GraphEntityRow) -> Entity:
    return Entity(id=row.id, name=row.name, type=row.type, code_system=row.code_system, code=row.code)
