"""The knowledge base: ingest (add, update by source, delete) into the database, and search it.

Ingestion is one transaction per document, so an interrupted ingest leaves no half-indexed document.
Chunks are stored once per content hash — an identical passage in two guidelines is one chunk with two
references, each keeping its own source, section and span — and near-duplicates that differ only in spacing
and punctuation are merged the same way. The sparse index (BM25 over word tokens and over character bigrams,
fused by reciprocal rank) is rebuilt in memory from stored tokens when the knowledge base changes; nothing is
re-read or re-tokenised.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from medfusion.knowledge import embeddings, tokens
from medfusion.knowledge.chunking import chunk_text
from medfusion.knowledge.documents import Authority, Citation, DocType, DocumentMeta, Hit
from medfusion.knowledge.readers import read_document
from medfusion.store.database import Database
from medfusion.store.tables import KbChunkRefRow, KbChunkRow, KbDocumentRow, KbVectorRow

RRF_K = 60
# The dense channel counts three times a sparse one in the fusion: chosen on a tuning split of
# triage_toyhom_im (seed 1, 400 questions disjoint from the evaluation sample; weights 1/2/3/4/6 gave
# recall@10 0.375/0.393/0.400/0.403/0.393, MRR best at 3). See docs/knowledge.md.
DENSE_WEIGHT = 3.0


class IngestResult(BaseModel):
    document_id: str
    source: str
    title: str
    chunks: int
    new_chunks: int
    status: str  # added | updated | unchanged


class SearchFilters(BaseModel):
    doc_type: DocType | None = None
    authority: Authority | None = None
    department: str | None = None
    published_after: date | None = None


def _hash(text: str, length: int = 32) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def chunk_id(text: str) -> str:
    """A chunk is addressed by its content, so its cached vector follows it into any knowledge base."""
    return _hash(text)


def _normalised(text: str) -> str:
    return re.sub(r"[\s\W_]+", "", text).lower()


class KnowledgeBase:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._index: Any = None
        self._version: tuple[int, int, int] | None = None
        self._lock = threading.Lock()

    # --- ingestion ---------------------------------------------------------------------------
    def ingest_file(self, path: Path, meta: DocumentMeta | None = None) -> IngestResult:
        title, text = read_document(path)
        meta = meta or DocumentMeta(source=str(path), title=title)
        if meta.title == "" or meta.title == path.stem:
            meta = meta.model_copy(update={"title": title})
        return self.ingest_text(text, meta)

    def ingest_text(self, text: str, meta: DocumentMeta, pack: str | None = None) -> IngestResult:
        content_hash = _hash(text, 64)
        document_id = _hash("doc:" + meta.source)
        pieces = chunk_text(text)
        with self.db.session() as session:
            existing = session.get(KbDocumentRow, document_id)
            if existing is not None and existing.content_hash == content_hash:
                return IngestResult(
                    document_id=document_id,
                    source=meta.source,
                    title=existing.title,
                    chunks=len(pieces),
                    new_chunks=0,
                    status="unchanged",
                )
            status = "updated" if existing is not None else "added"
            if existing is not None:
                self._remove(session, document_id)
            session.add(
                KbDocumentRow(
                    id=document_id,
                    source=meta.source,
                    title=meta.title,
                    doc_type=meta.doc_type.value,
                    authority=meta.authority.value,
                    publisher=meta.publisher,
                    published=meta.published,
                    department=meta.department,
                    content_hash=content_hash,
                    ingested_at=datetime.now(UTC),
                    pack=pack,
                )
            )
            session.flush()
            new_chunks = 0
            seen: set[tuple[str, int]] = set()
            for piece in pieces:
                norm = _hash(_normalised(piece.text))
                chunk = (
                    session.execute(select(KbChunkRow).where(KbChunkRow.norm_hash == norm)).scalars().first()
                )
                if chunk is None:
                    chunk = KbChunkRow(
                        id=chunk_id(piece.text),
                        text=piece.text,
                        norm_hash=norm,
                        word_tokens=" ".join(tokens.words(piece.text)),
                        bigram_tokens=" ".join(tokens.bigrams(piece.text)),
                    )
                    if session.get(KbChunkRow, chunk.id) is None:
                        session.add(chunk)
                        session.flush()
                        new_chunks += 1
                if (chunk.id, piece.start) in seen:
                    continue
                seen.add((chunk.id, piece.start))
                session.add(
                    KbChunkRefRow(
                        chunk_id=chunk.id,
                        document_id=document_id,
                        start=piece.start,
                        end=piece.end,
                        section=piece.section[:500],
                    )
                )
            session.flush()
        return IngestResult(
            document_id=document_id,
            source=meta.source,
            title=meta.title,
            chunks=len(pieces),
            new_chunks=new_chunks,
            status=status,
        )

    def embed(self, executor: str = "local", workers: int | None = None, progress: Any = None) -> int:
        """Embed every chunk that has no vector yet, as a resumable job; returns how many were embedded."""
        from medfusion.jobs import run_job
        from medfusion.settings import get_settings

        pending = embeddings.missing_chunk_ids(self.db)
        if not pending:
            return 0
        settings = get_settings()
        digest = _hash("\n".join(pending), 16)
        pending_file = settings.resolved_data_dir / "kb" / f"pending-{digest}.json"
        pending_file.parent.mkdir(parents=True, exist_ok=True)
        pending_file.write_text(json.dumps(pending))
        params = {
            "model": embeddings.MODEL,
            "pending_file": str(pending_file),
            "pending_hash": digest,
            "chunk_size": 256,
        }
        run_job(
            embeddings.EmbedChunks(),
            params,
            data_dir=settings.resolved_data_dir,
            database_url=self.db.url,
            executor=executor,
            workers=workers,
            progress=progress,
        )
        return len(pending)

    def sources(self, pack: str) -> list[str]:
        with self.db.read_session() as session:
            return list(
                session.execute(select(KbDocumentRow.source).where(KbDocumentRow.pack == pack)).scalars()
            )

    def delete(self, source: str) -> bool:
        with self.db.session() as session:
            row = session.execute(
                select(KbDocumentRow).where(KbDocumentRow.source == source)
            ).scalar_one_or_none()
            if row is None:
                return False
            self._remove(session, row.id)
        return True

    def _remove(self, session: Session, document_id: str) -> None:
        session.execute(delete(KbChunkRefRow).where(KbChunkRefRow.document_id == document_id))
        session.execute(delete(KbDocumentRow).where(KbDocumentRow.id == document_id))
        orphans = select(KbChunkRow.id).where(~KbChunkRow.id.in_(select(KbChunkRefRow.chunk_id)))
        session.execute(delete(KbChunkRow).where(KbChunkRow.id.in_(orphans)))
        session.flush()

    def stats(self) -> dict[str, int]:
        with self.db.read_session() as session:
            return {
                "documents": session.execute(select(func.count()).select_from(KbDocumentRow)).scalar_one(),
                "chunks": session.execute(select(func.count()).select_from(KbChunkRow)).scalar_one(),
                "references": session.execute(select(func.count()).select_from(KbChunkRefRow)).scalar_one(),
            }

    # --- search ------------------------------------------------------------------------------
    def _current_version(self) -> tuple[int, int, int]:
        """Changes whenever documents or vectors change, so the in-memory index is never stale."""
        with self.db.read_session() as session:
            count = session.execute(select(func.count()).select_from(KbChunkRefRow)).scalar_one()
            latest = session.execute(select(func.max(KbDocumentRow.ingested_at))).scalar_one()
            vectors = session.execute(select(func.count()).select_from(KbVectorRow)).scalar_one()
        return count, int(latest.timestamp() * 1e6) if latest else 0, vectors

    def _ensure_index(self) -> Any:
        import bm25s

        version = self._current_version()
        with self._lock:
            if self._index is not None and self._version == version:
                return self._index
            with self.db.read_session() as session:
                chunk_rows = session.execute(
                    select(
                        KbChunkRow.id, KbChunkRow.text, KbChunkRow.word_tokens, KbChunkRow.bigram_tokens
                    ).order_by(KbChunkRow.id)
                ).all()
                refs: dict[str, list[dict[str, Any]]] = defaultdict(list)
                for ref, doc in session.execute(
                    select(KbChunkRefRow, KbDocumentRow).join(
                        KbDocumentRow, KbDocumentRow.id == KbChunkRefRow.document_id
                    )
                ).all():
                    refs[ref.chunk_id].append(
                        {
                            "document_id": doc.id,
                            "source": doc.source,
                            "title": doc.title,
                            "section": ref.section,
                            "start": ref.start,
                            "end": ref.end,
                            "doc_type": doc.doc_type,
                            "authority": doc.authority,
                            "department": doc.department,
                            "published": doc.published,
                        }
                    )
            channels = {}
            for name, column in (("words", 2), ("bigrams", 3)):
                corpus = [row[column].split() or ["∅"] for row in chunk_rows]
                retriever = bm25s.BM25()
                if corpus:
                    retriever.index(corpus, show_progress=False)
                channels[name] = retriever
            ids = [r[0] for r in chunk_rows]
            vector_ids, matrix = embeddings.load_vectors(self.db)
            dense = None
            if vector_ids:
                position = {chunk_id: i for i, chunk_id in enumerate(ids)}
                pairs = [(position[c], i) for i, c in enumerate(vector_ids) if c in position]
                dense = {
                    "positions": np.array([p for p, _ in pairs]),
                    "matrix": matrix[[i for _, i in pairs]],
                }
            self._index = {
                "ids": ids,
                "texts": [r[1] for r in chunk_rows],
                "refs": refs,
                "channels": channels,
                "dense": dense,
            }
            self._version = version
            return self._index

    def search(
        self,
        query: str,
        k: int = 10,
        filters: SearchFilters | None = None,
        depth: int = 100,
        channels: tuple[str, ...] = ("words", "bigrams", "dense"),
    ) -> list[Hit]:
        """Reciprocal-rank fusion of the chosen channels; ``dense`` joins once chunks are embedded
        (``medfusion kb embed``)."""
        index = self._ensure_index()
        ids: list[str] = index["ids"]
        if not ids or not query.strip():
            return []
        fused: dict[int, float] = defaultdict(float)
        ranks: dict[int, dict[str, int]] = defaultdict(dict)
        dense = index["dense"]
        if "dense" in channels and dense is not None:
            scores = dense["matrix"] @ embeddings.embed_query(query)
            order = np.argsort(-scores)[:depth]
            for rank, row in enumerate(order):
                position = int(dense["positions"][row])
                fused[position] += DENSE_WEIGHT / (RRF_K + rank + 1)
                ranks[position]["dense"] = rank + 1
        for name, query_tokens, weight in (
            ("words", tokens.words(query), 1.0),
            ("bigrams", tokens.bigrams(query), 1.0),
        ):
            if not query_tokens or name not in channels:
                continue
            retriever = index["channels"][name]
            top = min(depth, len(ids))
            found, _scores = retriever.retrieve([query_tokens], k=top, show_progress=False)
            for rank, position in enumerate(found[0]):
                fused[int(position)] += weight / (RRF_K + rank + 1)
                ranks[int(position)][name] = rank + 1
        hits: list[Hit] = []
        for position, score in sorted(fused.items(), key=lambda kv: -kv[1]):
            chunk_id = ids[position]
            for ref in index["refs"].get(chunk_id, []):
                if not _passes(ref, filters):
                    continue
                hits.append(
                    Hit(
                        chunk_id=chunk_id,
                        score=round(score, 6),
                        text=index["texts"][position],
                        source=ref["source"],
                        citation=Citation(
                            document_id=ref["document_id"],
                            source=ref["source"],
                            title=ref["title"],
                            section=ref["section"],
                            start=ref["start"],
                            end=ref["end"],
                        ),
                        doc_type=DocType(ref["doc_type"]),
                        authority=Authority(ref["authority"]),
                        channels=ranks[position],
                    )
                )
                break
            if len(hits) >= k:
                break
        return hits


def _passes(ref: dict[str, Any], filters: SearchFilters | None) -> bool:
    if filters is None:
        return True
    if filters.doc_type and ref["doc_type"] != filters.doc_type.value:
        return False
    if filters.authority and ref["authority"] != filters.authority.value:
        return False
    if filters.department and ref["department"] != filters.department:
        return False
    return not (
        filters.published_after and (ref["published"] is None or ref["published"] < filters.published_after)
    )
