"""The embedded graph store (SQLite tables by default, PostgreSQL by URL): persistence, and the only module
of the graph that speaks SQL.

Writes: triples and codes (idempotent), removal of a pack's triples. Reads: entity rows, synonym pairs, typed
edges, an entity's links by name, and the has_symptom statistics the symptom rankers need. What the reads
mean — which entity a word stands for, paths, rankings — lives in :mod:`medfusion.graph.lexicon` and
:mod:`medfusion.graph.queries`; :class:`medfusion.graph.Graph` bundles the three.
"""

from __future__ import annotations

from collections import Counter
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


class ImportCounts(BaseModel):
    triples: int
    new_entities: int
    new_relations: int
    by_relation: dict[str, int]


class GraphStore:
    def __init__(self, db: Database) -> None:
        self.db = db

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

    # --- reads ---------------------------------------------------------------------------------
    def version(self) -> tuple[int, int]:
        """Entity and relation counts: they change whenever the graph does (caches key on them)."""
        with self.db.read_session() as session:
            return (
                session.execute(select(func.count()).select_from(GraphEntityRow)).scalar_one(),
                session.execute(select(func.count()).select_from(GraphRelationRow)).scalar_one(),
            )

    def entities(self) -> dict[str, Entity]:
        with self.db.read_session() as session:
            return {row.id: _entity(row) for row in session.execute(select(GraphEntityRow)).scalars()}

    def synonym_pairs(self) -> list[tuple[str, str]]:
        """(alias id, preferred id) of every ``synonym_of`` triple."""
        with self.db.read_session() as session:
            rows = session.execute(
                select(GraphRelationRow.head_id, GraphRelationRow.tail_id).where(
                    GraphRelationRow.relation == Relation.synonym_of.value
                )
            ).all()
        return [(alias, preferred) for alias, preferred in rows]

    def named(self, term: str, types: list[str] | None = None) -> list[Entity]:
        """Entities whose name is ``term`` or whose code is ``term`` (case-insensitive)."""
        if not _storable(term):
            return []
        query = select(GraphEntityRow).where(
            (GraphEntityRow.name == term) | (func.upper(GraphEntityRow.code) == term.upper())
        )
        if types:
            query = query.where(GraphEntityRow.type.in_(types))
        with self.db.read_session() as session:
            return [_entity(r) for r in session.execute(query).scalars()]

    def preferred_of(self, alias_name: str, types: list[str] | None = None) -> list[tuple[str, Entity]]:
        """(alias id, preferred entity) of every ``synonym_of`` triple whose alias is named ``alias_name``."""
        if not _storable(alias_name):
            return []
        alias, preferred = aliased(GraphEntityRow), aliased(GraphEntityRow)
        query = (
            select(alias.id, preferred)
            .join(GraphRelationRow, GraphRelationRow.tail_id == preferred.id)
            .join(alias, alias.id == GraphRelationRow.head_id)
            .where(GraphRelationRow.relation == Relation.synonym_of.value, alias.name == alias_name)
        )
        if types:
            query = query.where(preferred.type.in_(types))
        with self.db.read_session() as session:
            return [(alias_id, _entity(row)) for alias_id, row in session.execute(query).all()]

    def with_knowledge(self, ids: set[str]) -> set[str]:
        """Those of ``ids`` that head or tail a triple other than ``synonym_of``."""
        if not ids:
            return set()
        other = GraphRelationRow.relation != Relation.synonym_of.value
        with self.db.read_session() as session:
            heads = session.execute(
                select(GraphRelationRow.head_id).where(GraphRelationRow.head_id.in_(ids), other)
            ).scalars()
            tails = session.execute(
                select(GraphRelationRow.tail_id).where(GraphRelationRow.tail_id.in_(ids), other)
            ).scalars()
            return set(heads) | set(tails)

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

    def links(self, name: str, relation: Relation | None = None, limit: int = 200) -> list[Neighbour]:
        """The edges of every entity called ``name`` (any type), both ways, at most ``limit`` each way."""
        if not _storable(name):
            return []
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

    def count(self, type_: EntityType) -> int:
        with self.db.read_session() as session:
            return int(
                session.execute(
                    select(func.count()).select_from(GraphEntityRow).where(GraphEntityRow.type == type_.value)
                ).scalar_one()
            )

    def symptom_spread(self, symptoms: set[str]) -> dict[str, int]:
        """For each named symptom, how many has_symptom triples point at it (≈ how many diseases list it)."""
        symptoms = {s for s in symptoms if _storable(s)}
        symptom = aliased(GraphEntityRow)
        with self.db.read_session() as session:
            return {
                name: int(n)
                for name, n in session.execute(
                    select(symptom.name, func.count())
                    .join(GraphRelationRow, GraphRelationRow.tail_id == symptom.id)
                    .where(
                        GraphRelationRow.relation == Relation.has_symptom.value, symptom.name.in_(symptoms)
                    )
                    .group_by(symptom.name)
                ).all()
            }

    def diseases_listing(self, symptoms: set[str]) -> list[tuple[str, str]]:
        """(disease name, symptom name) for every has_symptom triple whose symptom is named."""
        symptoms = {s for s in symptoms if _storable(s)}
        disease, symptom = aliased(GraphEntityRow), aliased(GraphEntityRow)
        with self.db.read_session() as session:
            rows = session.execute(
                select(disease.name, symptom.name)
                .join(GraphRelationRow, GraphRelationRow.head_id == disease.id)
                .join(symptom, symptom.id == GraphRelationRow.tail_id)
                .where(GraphRelationRow.relation == Relation.has_symptom.value, symptom.name.in_(symptoms))
            ).all()
        return [(d, s) for d, s in rows]


def _storable(name: str) -> bool:
    """Whether a stored name could be ``name``. None holds a NUL: PostgreSQL's text type cannot (psycopg
    refuses the whole query with ``DataError``), so a looked-up term with one names nothing — on SQLite
    too, so both backends answer alike — instead of crashing the PostgreSQL lookup."""
    return "\x00" not in name


def _entity(row: GraphEntityRow) -> Entity:
    return Entity(id=row.id, name=row.name, type=row.type, code_system=row.code_system, code=row.code)
