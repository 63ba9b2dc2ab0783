"""The knowledge base: ingest (add, update by source, delete) into the database, and search it.

Ingestion is one transaction per document, so an interrupted ingest leaves no half-indexed document.
Chunks are stored once per content hash — an identical passage in two guidelines is one chunk with two
references, each keeping its own source, section and span — and near-duplicates that differ only in spacing
and punctuation are merged the same way. Search fuses, by reciprocal rank, BM25 over word tokens, BM25 over
character bigrams and the dense channel, each ranked by a backend (:mod:`medfusion.knowledge.backends`: in
memory by default, PostgreSQL full-text for the sparse side at scale); tokens are stored at ingest.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from medfusion.contract import Citation
from medfusion.feedback import prior as feedback_prior
from medfusion.knowledge import embeddings, tokens
from medfusion.knowledge.backends import Dense, Sparse, dense_for, sparse_for
from medfusion.knowledge.chunking import chunk_text
from medfusion.knowledge.documents import Authority, DocType, DocumentMeta, Hit
from medfusion.knowledge.fusion import RRF_K, ordered, rrf, rrf_eligible
from medfusion.knowledge.readers import read_document
from medfusion.store.database import Database
from medfusion.store.tables import KbChunkRefRow, KbChunkRow, KbDocumentRow, KbMetaRow

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
    embedded: int = 0  # chunks embedded right after (the API upload; the CLI embeds once for all files)


class SearchFilters(BaseModel):
    doc_type: DocType | None = None
    authority: Authority | None = None
    department: str | None = None
    published_after: date | None = None
    # own: the user's documents (no pack); pack:<name>: one installed pack's; all (or None): everything
    source: str | None = Field(default=None, pattern=r"^(own|all|pack:.+)$")


def _hash(text: str, length: int = 32) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def chunk_id(text: str) -> str:
    """A chunk is addressed by its content, so its cached vector follows it into any knowledge base."""
    return _hash(text)


def _normalised(text: str) -> str:
    return re.sub(r"[\s\W_]+", "", text).lower()


class KnowledgeBase:
    def __init__(self, db: Database, backend: str | None = None, dense: str | None = None) -> None:
        from medfusion.settings import get_settings

        settings = get_settings()
        self.db = db
        self.sparse: Sparse = sparse_for(db, backend or settings.kb_backend)
        self.dense: Dense = dense_for(db, dense or settings.kb_dense_backend)
        self.use_feedback = settings.kb_feedback
        # fuse each chunk over the channels it is eligible for (docs/knowledge.md, "Fusion"); False restores
        # the plain fusion that let vectored chunks crowd out unembedded ones (kept for the benchmark only)
        self.fair_fusion = True
        self._retokenise_if_needed()

    def _retokenise_if_needed(self) -> int:
        """Word tokens are stored at ingest; when the tokeniser changes (a new dictionary), every chunk is
        re-tokenised once so stored and query tokens agree. Returns how many chunks were redone."""
        current = tokens.signature()
        with self.db.read_session() as session:
            stored = session.get(KbMetaRow, "word_tokeniser")
            if stored is not None and stored.value == current:
                return 0
            ids = list(session.execute(select(KbChunkRow.id)).scalars()) if stored is not None else []
        for start in range(0, len(ids), 500):
            with self.db.session() as session:
                for chunk in session.execute(
                    select(KbChunkRow).where(KbChunkRow.id.in_(ids[start : start + 500]))
                ).scalars():
                    chunk.word_tokens = " ".join(tokens.words(chunk.text))
        with self.db.session() as session:
            row = session.get(KbMetaRow, "word_tokeniser")
            if row is None:
                session.add(KbMetaRow(key="word_tokeniser", value=current))
            else:
                row.value = current
        return len(ids)

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

    def embed(
        self,
        executor: str = "local",
        workers: int | None = None,
        progress: Any = None,
        document_ids: list[str] | None = None,
    ) -> int:
        """Embed every chunk that has no vector yet (of ``document_ids`` only, when given — what an ingest
        just brought), as a resumable job; returns how many were embedded."""
        from medfusion.jobs import run_job
        from medfusion.settings import get_settings

        pending = embeddings.missing_chunk_ids(self.db, document_ids=document_ids)
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
    def search(
        self,
        query: str,
        k: int = 10,
        filters: SearchFilters | None = None,
        depth: int = 100,
        channels: tuple[str, ...] = ("words", "bigrams", "dense"),
        expansions: list[str] | None = None,
    ) -> list[Hit]:
        """Reciprocal-rank fusion of the chosen channels; ``dense`` joins once chunks are embedded
        (``medfusion kb embed``). ``expansions`` (e.g. graph synonyms) are appended to the query.
        The backend ranks chunk ids; texts and citations come from the database."""
        if not query.strip():
            return []
        query = " ".join([query, *(expansions or [])])
        ranked: list[tuple[str, list[str], float]] = []
        if "dense" in channels and self.dense.has_vectors():
            ranked.append(("dense", self.dense.ranked(embeddings.embed_query(query), depth), DENSE_WEIGHT))
        for name, query_tokens in (
            ("words", tokens.words(query)),
            ("bigrams", tokens.bigrams(query)),
        ):
            if name in channels and query_tokens:
                ranked.append((name, self.sparse.ranked(name, query_tokens, depth), 1.0))
        if self.fair_fusion and any(name == "dense" for name, _, _ in ranked):
            # the dense channel can only rank chunks that have a vector; a chunk without one yet (ingested
            # with --no-embed, or still being embedded) is fused over its sparse channels alone
            dense = set(next(chunks for name, chunks, _ in ranked if name == "dense"))
            others = dict.fromkeys(c for name, chunks, _ in ranked if name != "dense" for c in chunks)
            vectored = dense | self.dense.covers(c for c in others if c not in dense)
            fused = rrf_eligible(
                [(chunks, weight, vectored if name == "dense" else None) for name, chunks, weight in ranked]
            )
        else:
            fused = rrf((chunks, weight) for _, chunks, weight in ranked)
        ranks: dict[str, dict[str, int]] = defaultdict(dict)
        for name, chunks, _ in ranked:
            for rank, chunk in enumerate(chunks):
                ranks[chunk][name] = rank + 1
        if self.use_feedback:
            # clinicians' accepted/rejected answers re-score what the channels found (feedback/prior.py)
            for chunk, prior in feedback_prior.priors(self.db, query, fused).items():
                fused[chunk] += feedback_prior.WEIGHT * prior / (RRF_K + 1)
        order = ordered(fused)
        hits: list[Hit] = []
        for start in range(0, len(order), 50):
            batch = order[start : start + 50]
            found = self._materialise(batch, filters)
            for chunk in batch:
                if chunk in found:
                    hit = found[chunk]
                    hits.append(
                        hit.model_copy(update={"score": round(fused[chunk], 6), "channels": ranks[chunk]})
                    )
                    if len(hits) >= k:
                        return hits
        return hits

    def in_section(self, subject: str, heading: str, k: int = 3) -> list[Hit]:
        """Passages filed under ``subject > … heading`` (e.g. a disease's 一线治疗 section), in document order
        — for a question about a known entity, looking the section up beats ranking it."""
        pattern = f"{subject}%{heading}%"
        with self.db.read_session() as session:
            rows = session.execute(
                select(KbChunkRefRow.chunk_id, KbChunkRefRow.section)
                .where(KbChunkRefRow.section.like(pattern))
                .order_by(KbChunkRefRow.document_id, KbChunkRefRow.start)
            ).all()
        wanted = []
        for chunk, section in rows:
            top, _, rest = section.partition(" > ")
            if (top == subject or top.startswith(f"{subject}（")) and heading in rest and chunk not in wanted:
                wanted.append(chunk)
        found = self._materialise(wanted[:k], None)
        return [found[c] for c in wanted[:k] if c in found]

    def _materialise(self, chunk_ids: list[str], filters: SearchFilters | None) -> dict[str, Hit]:
        """Each chunk's text and its first reference (earliest-ingested document) that passes the filters."""
        query = (
            select(KbChunkRow.id, KbChunkRow.text, KbChunkRefRow, KbDocumentRow)
            .join(KbChunkRefRow, KbChunkRefRow.chunk_id == KbChunkRow.id)
            .join(KbDocumentRow, KbDocumentRow.id == KbChunkRefRow.document_id)
            .where(KbChunkRow.id.in_(chunk_ids))
            .order_by(KbDocumentRow.ingested_at, KbDocumentRow.id, KbChunkRefRow.start)
        )
        if filters is not None:
            if filters.doc_type:
                query = query.where(KbDocumentRow.doc_type == filters.doc_type.value)
            if filters.authority:
                query = query.where(KbDocumentRow.authority == filters.authority.value)
            if filters.department:
                query = query.where(KbDocumentRow.department == filters.department)
            if filters.published_after:
                query = query.where(KbDocumentRow.published >= filters.published_after)
            if filters.source == "own":
                query = query.where(KbDocumentRow.pack.is_(None))
            elif filters.source and filters.source.startswith("pack:"):
                query = query.where(KbDocumentRow.pack == filters.source.removeprefix("pack:"))
        found: dict[str, Hit] = {}
        with self.db.read_session() as session:
            for chunk, body, ref, doc in session.execute(query).all():
                if chunk in found:
                    continue
                found[chunk] = Hit(
                    chunk_id=chunk,
                    score=0.0,
                    text=body,
                    source=doc.source,
                    citation=Citation(
                        document_id=doc.id,
                        source=doc.source,
                        title=doc.title,
                        section=ref.section,
                        start=ref.start,
                        end=ref.end,
                    ),
                    doc_type=DocType(doc.doc_type),
                    authority=Authority(doc.authority),
                )
        return found
