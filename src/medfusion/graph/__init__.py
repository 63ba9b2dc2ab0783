"""Medical knowledge graph: typed entities, sourced triples, importers, lexicon, queries and conflict checks.

:class:`Graph` bundles the three parts a caller uses — ``store`` (persistence), ``lexicon`` (which entity a
word stands for) and ``queries`` (neighbours, paths, departments, disease rankings) — over one database, so
one object is passed around and the lexicon's cache is shared by everything that holds it.
"""

from __future__ import annotations

from medfusion.graph.lexicon import Lexicon
from medfusion.graph.queries import GraphQueries
from medfusion.graph.store import GraphStore
from medfusion.store.database import Database


class Graph:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.store = GraphStore(db)
        self.lexicon = Lexicon(self.store)
        self.queries = GraphQueries(self.store, self.lexicon)


__all__ = ["Graph", "GraphQueries", "GraphStore", "Lexicon"]
