"""Retrieval backends behind one interface: each channel turns a query into chunk ids, best first.

Sparse side (BM25-style over the word and bigram tokens stored at ingest):

- ``memory`` (default, embedded): bm25s in process, rebuilt when the knowledge base changes;
- ``postgres`` (scale-out): PostgreSQL full-text search through GIN expression indexes (migration 0007), so
  nothing is held in process and every API worker shares one index.

Dense side (inner product over the vectors cached in ``kb_vectors``):

- ``memory`` (default): an exact float32 matrix in process;
- ``milvus`` (scale-out): a Milvus collection through pymilvus — milvus-lite (a local file) by default, the
  same API against a Milvus server when ``MEDFUSION_KB_MILVUS_URI`` is ``http://…``. ``kb_vectors`` stays the
  source of truth; the collection is brought up to date (inserts and deletes) before a search.

The knowledge base fuses the channels by reciprocal rank and reads the winning chunks' texts and citations
from the database, so every backend yields hits of the same shape.
"""

from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sqlalchemy import func, select, text

from medfusion.errors import InvalidInput
from medfusion.knowledge import embeddings
from medfusion.store.database import Database
from medfusion.store.tables import KbChunkRefRow, KbChunkRow, KbDocumentRow, KbMetaRow, KbVectorRow

_COLUMNS = {"words": "word_tokens", "bigrams": "bigram_tokens"}


class Sparse(Protocol):
    name: str

    def ranked(self, channel: str, query_tokens: list[str], depth: int) -> list[str]:
        """Chunk ids for ``words`` or ``bigrams``, best first."""
        ...


class Dense(Protocol):
    name: str

    def has_vectors(self) -> bool: ...

    def covers(self, chunk_ids: Iterable[str]) -> set[str]:
        """Which of ``chunk_ids`` this index holds a vector for (the chunks it can rank at all)."""
        ...

    def ranked(self, vector: np.ndarray, depth: int) -> list[str]: ...


def version(db: Database) -> tuple[int, int, int, str]:
    """Changes whenever documents, vectors or the tokeniser change, so an in-process index is never stale."""
    with db.read_session() as session:
        count = session.execute(select(func.count()).select_from(KbChunkRefRow)).scalar_one()
        latest = session.execute(select(func.max(KbDocumentRow.ingested_at))).scalar_one()
        vectors = session.execute(select(func.count()).select_from(KbVectorRow)).scalar_one()
        tokeniser = session.execute(select(KbMetaRow.value).where(KbMetaRow.key == "word_tokeniser")).scalar()
    return count, int(latest.timestamp() * 1e6) if latest else 0, vectors, tokeniser or ""


class _Cached(ABC):
    """State rebuilt from the database when :func:`version` changes."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._state: Any = None
        self._version: tuple[int, int, int, str] | None = None
        self._lock = threading.Lock()

    @abstractmethod
    def _build(self) -> Any:
        """The state for the current data."""

    def state(self) -> Any:
        current = version(self.db)
        with self._lock:
            if self._state is None or self._version != current:
                self._state = self._build()
                self._version = current
            return self._state


class MemorySparse(_Cached):
    name = "memory"

    def _build(self) -> dict[str, Any]:
        import bm25s

        with self.db.read_session() as session:
            rows = session.execute(
                select(KbChunkRow.id, KbChunkRow.word_tokens, KbChunkRow.bigram_tokens).order_by(
                    KbChunkRow.id
                )
            ).all()
        channels = {}
        for name, column in (("words", 1), ("bigrams", 2)):
            retriever = bm25s.BM25()
            if rows:
                retriever.index([r[column].split() or ["∅"] for r in rows], show_progress=False)
            channels[name] = retriever
        return {"ids": [r[0] for r in rows], "channels": channels}

    def ranked(self, channel: str, query_tokens: list[str], depth: int) -> list[str]:
        state = self.state()
        ids: list[str] = state["ids"]
        if not ids or not query_tokens:
            return []
        found, scores = state["channels"][channel].retrieve(
            [query_tokens], k=min(depth, len(ids)), show_progress=False
        )
        # bm25s fills k places even when nothing matches: a zero score is not a hit
        return [ids[int(p)] for p, score in zip(found[0], scores[0], strict=True) if score > 0]


class PostgresSparse:
    name = "postgres"

    def __init__(self, db: Database) -> None:
        if db.dialect != "postgresql":
            raise InvalidInput.for_field(
                "MEDFUSION_KB_BACKEND",
                "postgres 检索后端需要 PostgreSQL 数据库 (needs a postgresql:// database)",
            )
        self.db = db

    def ranked(self, channel: str, query_tokens: list[str], depth: int) -> list[str]:
        if not query_tokens:
            return []
        column = _COLUMNS[channel]
        # websearch syntax never raises on odd tokens; "or" joins them (any term may match, as in BM25)
        query = " or ".join(f'"{t}"' for t in dict.fromkeys(query_tokens) if t.strip('"'))
        statement = text(
            "SELECT id FROM kb_chunks, websearch_to_tsquery('simple', :q) AS q "
            f"WHERE to_tsvector('simple', {column}) @@ q "
            f"ORDER BY ts_rank(to_tsvector('simple', {column}), q) DESC, id LIMIT :depth"
        )
        with self.db.read_session() as session:
            return [row[0] for row in session.execute(statement, {"q": query, "depth": depth})]


class MemoryDense(_Cached):
    name = "memory"

    def _build(self) -> tuple[list[str], np.ndarray, frozenset[str]]:
        ids, matrix = embeddings.load_vectors(self.db)
        return ids, matrix, frozenset(ids)

    def has_vectors(self) -> bool:
        return bool(self.state()[0])

    def covers(self, chunk_ids: Iterable[str]) -> set[str]:
        held: frozenset[str] = self.state()[2]
        return {c for c in chunk_ids if c in held}

    def ranked(self, vector: np.ndarray, depth: int) -> list[str]:
        ids, matrix, _ = self.state()
        if not ids:
            return []
        order = np.argsort(-(matrix @ vector))[:depth]
        return [ids[int(i)] for i in order]


class MilvusDense(_Cached):
    """A Milvus collection per embedding model, kept in step with ``kb_vectors``."""

    name = "milvus"

    def __init__(self, db: Database, uri: str, model: str = embeddings.MODEL) -> None:
        from pymilvus import MilvusClient

        super().__init__(db)
        if not uri.startswith(("http://", "https://", "tcp://")):
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        self.client = MilvusClient(uri)
        self.model = model
        self.collection = "kb_" + hashlib.sha256(f"{db.url}|{model}".encode()).hexdigest()[:16]

    def _ensure_collection(self, dim: int) -> None:
        from pymilvus import DataType

        if self.client.has_collection(self.collection):
            return
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        index = self.client.prepare_index_params()
        index.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        self.client.create_collection(self.collection, schema=schema, index_params=index)

    def _present(self) -> set[str]:
        present: set[str] = set()
        iterator = self.client.query_iterator(
            self.collection, batch_size=10000, filter='id != ""', output_fields=["id"]
        )
        while batch := iterator.next():
            present.update(row["id"] for row in batch)
        iterator.close()
        return present

    def _build(self) -> frozenset[str]:
        """Bring the collection in step with ``kb_vectors``: insert what is new, delete what is gone; the
        chunk ids it then holds."""
        with self.db.read_session() as session:
            wanted = set(
                session.execute(select(KbVectorRow.chunk_id).where(KbVectorRow.model == self.model)).scalars()
            )
            dim = session.execute(
                select(KbVectorRow.dim).where(KbVectorRow.model == self.model).limit(1)
            ).scalar()
        if dim is None:
            return frozenset()
        self._ensure_collection(int(dim))
        present = self._present()
        gone = sorted(present - wanted)
        if gone:
            self.client.delete(self.collection, ids=gone)
        fresh = sorted(wanted - present)
        for start in range(0, len(fresh), 2000):
            batch = fresh[start : start + 2000]
            with self.db.read_session() as session:
                rows = session.execute(
                    select(KbVectorRow.chunk_id, KbVectorRow.vector).where(
                        KbVectorRow.model == self.model, KbVectorRow.chunk_id.in_(batch)
                    )
                ).all()
            self.client.insert(
                self.collection,
                [{"id": c, "vector": np.frombuffer(v, dtype=np.float32).tolist()} for c, v in rows],
            )
        if gone or fresh:
            self.client.flush(self.collection)
        return frozenset(wanted)

    def has_vectors(self) -> bool:
        return bool(self.state())

    def covers(self, chunk_ids: Iterable[str]) -> set[str]:
        held: frozenset[str] = self.state()
        return {c for c in chunk_ids if c in held}

    def ranked(self, vector: np.ndarray, depth: int) -> list[str]:
        if not self.state():
            return []
        found = self.client.search(self.collection, data=[vector.astype(np.float32).tolist()], limit=depth)
        return [str(hit["id"]) for hit in found[0]]


def sparse_for(db: Database, name: str) -> Sparse:
    if name == "postgres":
        return PostgresSparse(db)
    if name == "memory":
        return MemorySparse(db)
    raise InvalidInput.for_field(
        "MEDFUSION_KB_BACKEND", f"未知检索后端 unknown backend {name!r} (memory | postgres)"
    )


def dense_for(db: Database, name: str, uri: str | None = None) -> Dense:
    if name == "milvus":
        from medfusion.settings import get_settings

        return MilvusDense(
            db, uri or get_settings().kb_milvus_uri or str(get_settings().resolved_data_dir / "milvus.db")
        )
    if name == "memory":
        return MemoryDense(db)
    raise InvalidInput.for_field(
        "MEDFUSION_KB_DENSE_BACKEND", f"未知向量后端 unknown dense backend {name!r} (memory | milvus)"
    )
