"""One evidence book per run: every passage, graph fact and chart fact a tool brings gets one id (K1… for
passages, G1… for graph facts, P1… for the patient's chart) that answers cite, whichever tool found it."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from medfusion.contract import Citation, Evidence
from medfusion.graph.store import Neighbour
from medfusion.knowledge.documents import Hit

# evidence ids by kind: K passages, G graph facts, P the patient record, R rules, S scores with their inputs
_PREFIX = {"passage": "K", "graph": "G", "record": "P", "rule": "R", "score": "S"}


class EvidenceBook:
    def __init__(self) -> None:
        self.items: list[Evidence] = []
        self._by_key: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()  # an MDT team's agents share one book from parallel threads

    def add(
        self,
        kind: str,
        text: str,
        source: str,
        citation: Citation | None = None,
        authority: str | None = None,
        review_status: str | None = None,
        chunk_id: str | None = None,
    ) -> str:
        key = (kind, text)
        with self._lock:
            if key in self._by_key:
                return self._by_key[key]
            number = sum(1 for e in self.items if e.kind == kind) + 1
            ident = f"{_PREFIX[kind]}{number}"
            self.items.append(
                Evidence(
                    id=ident,
                    kind=kind,
                    text=text,
                    source=source,
                    citation=citation,
                    authority=authority,
                    review_status=review_status,
                    chunk_id=chunk_id,
                )
            )
            self._by_key[key] = ident
            return ident

    def add_hit(self, hit: Hit) -> str:
        """A retrieved passage, with its citation, authority and chunk (feedback re-weights the chunk)."""
        return self.add(
            "passage", hit.text, hit.source, hit.citation, hit.authority.value, chunk_id=hit.chunk_id
        )

    def add_graph(
        self, title: str, neighbours: Sequence[Neighbour], names: Sequence[str] | None = None
    ) -> str:
        """One graph fact, "title：a、b、c", over these neighbours (``names`` when the text lists others, such
        as a disease's ranked symptom profile); sourced and reviewed as the first neighbour is."""
        listed = "、".join(n.name for n in neighbours) if names is None else "、".join(names)
        first = neighbours[0]
        return self.add("graph", f"{title}：{listed}", first.source, review_status=first.review_status)

    def adopt(self, evidence: list[Evidence]) -> dict[str, str]:
        """Take another engine's evidence (the knowledge layer's answer); returns old id → new id."""
        return {
            e.id: self.add(e.kind, e.text, e.source, e.citation, e.authority, e.review_status, e.chunk_id)
            for e in evidence
        }

    def get(self, ident: str) -> Evidence | None:
        return next((e for e in self.items if e.id == ident), None)
