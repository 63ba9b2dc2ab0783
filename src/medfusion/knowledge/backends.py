"""Retrieval backends behind one interface: each channel turns a query into chunk ids, best first.

- ``memory`` (default, embedded): BM25 (bm25s) over the stored word and bigram tokens, and exact inner
  product over the cached vectors, both held in process and rebuilt when the knowledge base changes.
- ``postgres`` (scale-out sparse side): PostgreSQL full-text search over the same stored tokens, through GIN
  expression indexes (migration 0007), so nothing is held in process and many API workers share one index.
  No pgvector exists on these machines, so the dense side stays in memory with it (Milvus is the planned
  scale-out dense backend).

The knowledge base fuses the channels by reciprocal rank and reads the winning chunks' texts and sources
from the database, so every backend yields the same hits with the same citations.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import numpy as np
from sqlalchemy import func, select, text

from medfusion.errors import InvalidInput
from medfusion.knowledge import embeddings
from medfusion.store.database import Database
from medfusion.store.tables import KbChunkRefRow, KbChunkRow, KbDocumentRow, KbVectorRow

SPARSE_CHANNELS = ("words", "bigrams")
_COLUMNS = {"words": "word_tokens", "bigrams": "bigram_tokens"}


class Backend(Protocol):
    name: str

    def ranked(self, channel: str, query_tokens: list[str], query_vector: Any, depth: int) -> list[str]:
        """Chunk ids for one channel (``words``, ``bigrams`` or ``dense``), best first."""
        ...

    def has_dense(self) -> bool: ...


def version(db: Database) -> tuple[int, int, int]:
    """Changes whenever documents or vectors change, so an in-memory index is never stale."""
    with db.read_session() as session:
        count = session.execute(select(func.count()).select_from(KbChunkRefRow)).scalar_one()
        latest = session.execute(select(func.max(KbDocumentRow.ingested_at))).scalar_one()
        vectors = session.execute(select(func.count()).select_from(KbVectorRow)).scalar_one()
    return count, int(latest.timestamp() * 1e6) if latest else 0, vectors


class MemoryBackend:
    """bm25s and a numpy matrix, rebuilt from stored tokens and cached vectors when the data change."""

    name = "memory"

    def __init__(self, db: Database) -> None:
        self.db = db
        self._state: dict[str, Any] | None = None
        self._version: tuple[int, int, int] | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> dict[str, Any]:
        import bm25s

        current = version(self.db)
        with self._lock:
            if self._state is not None and self._version == current:
                return self._state
            with self.db.read_session() as session:
                rows = session.execute(
                    select(KbChunkRow.id, KbChunkRow.word_tokens, KbChunkRow.bigram_tokens).order_by(
                        KbChunkRow.id
                    )
                ).all()
            ids = [r[0] for r in rows]
            channels = {}
            for name, column in (("words", 1), ("bigrams", 2)):
                retriever = bm25s.BM25()
                if rows:
                    retriever.index([r[column].split() or ["∅"] for r in rows], show_progress=False)
                channels[name] = retriever
            vector_ids, matrix = embeddings.load_vectors(self.db)
            self._state = {"ids": ids, "channels": channels, "vector_ids": vector_ids, "matrix": matrix}
            self._version = current
            return self._state

    def has_dense(self) -> bool:
        return bool(self._ensure()["vector_ids"])

    def ranked(self, channel: str, query_tokens: list[str], query_vector: Any, depth: int) -> list[str]:
        state = self._ensure()
        ids: list[str] = state["ids"]
        if not ids:
            return []
        if channel == "dense":
            if not state["vector_ids"]:
                return []
            scores = state["matrix"] @ query_vector
            order = np.argsort(-scores)[:depth]
            return [state["vector_ids"][int(i)] for i in order]
        if not query_tokens:
            return []
        found, _ = state["channels"][channel].retrieve(
            [query_tokens], k=min(depth, len(ids)), show_progress=False
        )
        return [ids[int(p)] for p in found[0]]


class PostgresBackend(MemoryBackend):
    """Sparse channels in PostgreSQL full-text search; the dense channel as in :class:`MemoryBackend`."""

    name = "postgres"

    def __init__(self, db: Database) -> None:
        if db.dialect != "postgresql":
            raise InvalidInput.for_field(
                "MEDFUSION_KB_BACKEND",
                "postgres 检索后端需要 PostgreSQL 数据库 (needs a postgresql:// database)",
            )
        super().__init__(db)
        self._vectors: tuple[tuple[int, int, int], list[str], np.ndarray] | None = None

    def _dense(self) -> tuple[list[str], np.ndarray]:
        current = version(self.db)
        with self._lock:
            if self._vectors is None or self._vectors[0] != current:
                ids, matrix = embeddings.load_vectors(self.db)
                self._vectors = (current, ids, matrix)
            return self._vectors[1], self._vectors[2]

    def has_dense(self) -> bool:
        return bool(self._dense()[0])

    def ranked(self, channel: str, query_tokens: list[str], query_vector: Any, depth: int) -> list[str]:
        if channel == "dense":
            ids, matrix = self._dense()
            if not ids:
                return []
            order = np.argsort(-(matrix @ query_vector))[:depth]
            return [ids[int(i)] for i in order]
        if not query_tokens:
            return []
        column = _COLUMNS[channel]
        # websearch syntax never raises on odd tokens; "or" joins them (BM25-like: any term may match)
        query = " or ".join(f'"{t}"' for t in dict.fromkeys(query_tokens) if t.strip('"'))
        statement = text(
            f"SELECT id FROM kb_chunks, websearch_to_tsquery('simple', :q) AS q "
            f"WHERE to_tsvector('simple', {column}) @@ q "
            f"ORDER BY ts_rank(to_tsvector('simple', {column}), q) DESC, id LIMIT :depth"
        )
        with self.db.read_session() as session:
            return [row[0] for row in session.execute(statement, {"q": query, "depth": depth})]


def backend_for(db: Database, name: str) -> Backend:
    if name == "postgres":
        return PostgresBackend(db)
    if name == "memory":
        return MemoryBackend(db)
    raise InvalidInput.for_field(
        "MEDFUSION_KB_BACKEND", f"未知检索后端 unknown backend {name!r} (memory | postgres)"
    )
