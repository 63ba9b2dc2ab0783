"""The graph's lexicon: which entity a clinician's or a patient's word stands for.

Every name and alias maps to its preferred entities (an alias stands for its preferred entity only); names
also resolve by code (case-insensitive: ``C10AA01``, ``N18.5``). :meth:`Lexicon.resolve_term` is the one
"term → entity of a type" lookup, with an optional containment fallback for words the graph does not know
exactly (鼻涕 → 流鼻涕, 上呼吸道感染 → 急性上呼吸道感染, 小儿手足口病 → 手足口病); the consult findings,
the MDT's chart diagnoses and the evaluation's dataset labels all use it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pydantic import BaseModel

from medfusion.graph.model import EntityType, Relation
from medfusion.graph.store import Entity, GraphStore


class Mention(BaseModel):
    surface: str  # the words as written
    start: int
    entity: Entity  # the preferred entity they stand for


class Lexicon:
    """Built from a store; the name map is cached and rebuilt when the graph changes."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store
        self._names: tuple[tuple[int, int], dict[str, list[Entity]]] | None = None
        self._typed: dict[str, tuple[tuple[int, int], list[str]]] = {}

    def names(self) -> dict[str, list[Entity]]:
        """Every name and alias → the preferred entities, rebuilt when the graph changes."""
        version = self.store.version()
        if self._names is not None and self._names[0] == version:
            return self._names[1]
        entities = self.store.entities()
        aliases = self.store.synonym_pairs()
        names: dict[str, list[Entity]] = defaultdict(list)
        alias_ids = {alias for alias, _ in aliases}
        for entity in entities.values():
            if entity.id not in alias_ids:  # an alias stands for its preferred entity only
                names[entity.name].append(entity)
        for alias, preferred in aliases:
            if alias in entities and preferred in entities:
                names[entities[alias].name].append(entities[preferred])
        lexicon = {name: list({e.id: e for e in found}.values()) for name, found in names.items()}
        self._names = (version, lexicon)
        return lexicon

    def names_of(self, type_: EntityType) -> list[str]:
        """The names and aliases that stand for an entity of ``type_``, shortest first (ties by name)."""
        version = self.store.version()
        cached = self._typed.get(type_.value)
        if cached is not None and cached[0] == version:
            return cached[1]
        found = sorted(
            {name for name, entities in self.names().items() if any(e.type == type_.value for e in entities)},
            key=lambda n: (len(n), n),
        )
        self._typed[type_.value] = (version, found)
        return found

    def mentions(self, text: str, longest: int = 16) -> list[Mention]:
        """Entities named in free text, by forward maximum matching over names and aliases."""
        lexicon = self.names()
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

    def resolve(self, term: str, types: Iterable[EntityType] | None = None) -> list[Entity]:
        """Entities a clinician's word stands for: exact name, code (case-insensitive), or a synonym
        resolved to its preferred name. Several types may share a name (a drug and its class)."""
        term = term.strip()
        if not term:
            return []
        wanted = [t.value for t in types] if types else None
        found = self.store.named(term, wanted)
        aliases: set[str] = set()
        for alias_id, preferred in self.store.preferred_of(term, wanted):
            aliases.add(alias_id)
            found.append(preferred)
        # an alias stands for its preferred entity, not for itself — unless it carries knowledge of
        # its own (two packs may each prefer one name and attach rules to it: 消化道出血 / 上消化道出血)
        aliases -= self.store.with_knowledge(aliases)
        unique = {e.id: e for e in found if e.id not in aliases}
        return sorted(unique.values(), key=lambda e: (e.type, e.name))

    def resolve_term(self, type_: EntityType, term: str, *, containment: bool = False) -> Entity | None:
        """The entity of ``type_`` a term stands for: by name, code or synonym (the first by name where
        several); with ``containment``, else the shortest graph name that contains the term, else the
        longest graph name (two characters or more) the term contains — that name's own entity when it
        carries knowledge of its own (急性上呼吸道感染 with its symptoms, not the ICD-10 block it is an alias
        of), else its preferred entity."""
        term = term.strip()
        if not term:
            return None
        exact = self._first(type_, term)
        if exact is not None or not containment:
            return exact
        names = self.names_of(type_)
        inside = next((n for n in names if term in n), None)
        near = inside or next((n for n in reversed(names) if len(n) >= 2 and n in term), None)
        if near is None:
            return None
        found = [e for e in self.resolve(near) if e.type == type_.value]
        itself = [e for e in found if e.name == near]
        return (itself or found or [e for e in self.names()[near] if e.type == type_.value])[0]

    def _first(self, type_: EntityType, term: str) -> Entity | None:
        return next((e for e in self.resolve(term) if e.type == type_.value), None)

    def synonyms(self, name: str) -> list[str]:
        """Every name the same entity goes by (preferred name and aliases), for query expansion."""
        names = {name}
        for entity in self.resolve(name):
            names.add(entity.name)
            names.update(
                n.name
                for n in self.store.links(entity.name, Relation.synonym_of)
                if n.direction == "in" and n.type == entity.type
            )
        return sorted(names)
