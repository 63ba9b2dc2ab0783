"""Query expansion through the graph's synonyms: the entities a query names are found (forward maximum
matching over names and aliases) and every other name they go by is added — 发烧 brings 发热, 心梗 brings
急性心肌梗死 — so a passage that uses the clinician's word and one that uses the patient's both match."""

from __future__ import annotations

from medfusion.graph import Graph
from medfusion.graph.lexicon import Mention

MAX_TERMS = 8


def synonym_terms(
    graph: Graph, query: str, limit: int = MAX_TERMS, mentions: list[Mention] | None = None
) -> list[str]:
    """``mentions``: the query's entities when the caller has already found them."""
    terms: list[str] = []
    for mention in graph.lexicon.mentions(query) if mentions is None else mentions:
        for name in graph.lexicon.synonyms(mention.entity.name):
            if name not in query and name not in terms:
                terms.append(name)
    return terms[:limit]
