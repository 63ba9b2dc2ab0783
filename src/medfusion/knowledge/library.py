"""Browsing the knowledge base: its documents (with chunk and vector counts and who brought each), one
document's chunks in order, and where a query's terms fall in a retrieved passage (for highlighting).

Who ingested a document is read from the audit log (``kb.ingest`` entries name the source), the one record
of who did what; a pack's documents came with the pack.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import func, select

from medfusion.cjk import bigrams
from medfusion.errors import NotFound
from medfusion.knowledge import embeddings, tokens
from medfusion.knowledge.documents import Authority, DocType
from medfusion.store.database import Database
from medfusion.store.tables import AuditRow, KbChunkRefRow, KbChunkRow, KbDocumentRow, KbVectorRow

DOC_TYPE_LABELS = {
    DocType.guideline: "指南",
    DocType.textbook: "教科书",
    DocType.drug_label: "药品说明书",
    DocType.hospital_sop: "院内规范",
    DocType.faq: "常见问答",
}


class DocumentSummary(BaseModel):
    id: str
    source: str
    title: str
    doc_type: DocType
    authority: Authority
    publisher: str | None
    department: str | None
    pack: str | None
    ingested_at: datetime
    chunks: int
    embedded: int
    ingested_by: str | None = None


class DocumentPage(BaseModel):
    documents: list[DocumentSummary]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


class ChunkView(BaseModel):
    chunk_id: str
    section: str
    start: int
    end: int
    text: str
    embedded: bool


def _utc(value: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive; they were written in UTC
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _counts(db: Database, ids: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Per document: chunk references, and how many of those chunks have a vector (current model)."""
    with db.read_session() as session:
        chunks = dict(
            session.execute(
                select(KbChunkRefRow.document_id, func.count())
                .where(KbChunkRefRow.document_id.in_(ids))
                .group_by(KbChunkRefRow.document_id)
            ).all()
        )
        embedded = dict(
            session.execute(
                select(KbChunkRefRow.document_id, func.count())
                .join(
                    KbVectorRow,
                    (KbVectorRow.chunk_id == KbChunkRefRow.chunk_id)
                    & (KbVectorRow.model == embeddings.MODEL),
                )
                .where(KbChunkRefRow.document_id.in_(ids))
                .group_by(KbChunkRefRow.document_id)
            ).all()
        )
    return chunks, embedded


def ingested_by(db: Database, sources: list[str], scan: int = 5000) -> dict[str, str]:
    """The user whose ``kb.ingest`` last added or updated each source (the newest ``scan`` such entries)."""
    wanted = set(sources)
    found: dict[str, str] = {}
    with db.read_session() as session:
        rows = session.execute(
            select(AuditRow.actor, AuditRow.detail)
            .where(AuditRow.action == "kb.ingest", AuditRow.outcome == "success")
            .order_by(AuditRow.seq.desc())
            .limit(scan)
        ).all()
    for actor, raw in rows:
        detail = json.loads(raw)
        source = detail.get("source")
        if source in wanted and source not in found and detail.get("status") in ("added", "updated"):
            found[source] = actor
    return found


def _summary(row: KbDocumentRow) -> DocumentSummary:
    """The row's own fields (read inside its session); the counts are filled in by :func:`_counted`."""
    return DocumentSummary(
        id=row.id,
        source=row.source,
        title=row.title,
        doc_type=DocType(row.doc_type),
        authority=Authority(row.authority),
        publisher=row.publisher,
        department=row.department,
        pack=row.pack,
        ingested_at=_utc(row.ingested_at),
        chunks=0,
        embedded=0,
    )


def _counted(db: Database, found: list[DocumentSummary]) -> list[DocumentSummary]:
    chunks, embedded = _counts(db, [d.id for d in found])
    who = ingested_by(db, [d.source for d in found if d.pack is None])
    return [
        d.model_copy(
            update={
                "chunks": chunks.get(d.id, 0),
                "embedded": embedded.get(d.id, 0),
                "ingested_by": who.get(d.source),
            }
        )
        for d in found
    ]


def documents(db: Database, *, source: str = "all", page: int = 1, per_page: int = 25) -> DocumentPage:
    """One page of documents, newest first; ``source`` as in search: own | pack:<name> | all."""
    query = select(KbDocumentRow)
    if source == "own":
        query = query.where(KbDocumentRow.pack.is_(None))
    elif source.startswith("pack:"):
        query = query.where(KbDocumentRow.pack == source.removeprefix("pack:"))
    with db.read_session() as session:
        total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        found = [
            _summary(row)
            for row in session.execute(
                query.order_by(KbDocumentRow.ingested_at.desc(), KbDocumentRow.title)
                .offset((page - 1) * per_page)
                .limit(per_page)
            ).scalars()
        ]
    return DocumentPage(documents=_counted(db, found), total=total, page=page, per_page=per_page)


def document(db: Database, document_id: str) -> DocumentSummary:
    with db.read_session() as session:
        row = session.get(KbDocumentRow, document_id)
        found = _summary(row) if row is not None else None
    if found is None:
        raise NotFound(f"知识库中没有该文档 no document {document_id}")
    return _counted(db, [found])[0]


def chunks(
    db: Database, document_id: str, *, page: int = 1, per_page: int = 20
) -> tuple[list[ChunkView], int]:
    """One page of a document's chunks in document order, and how many it has."""
    with db.read_session() as session:
        total = session.execute(
            select(func.count()).select_from(KbChunkRefRow).where(KbChunkRefRow.document_id == document_id)
        ).scalar_one()
        rows = session.execute(
            select(KbChunkRefRow, KbChunkRow.text, KbVectorRow.chunk_id)
            .join(KbChunkRow, KbChunkRow.id == KbChunkRefRow.chunk_id)
            .outerjoin(
                KbVectorRow,
                (KbVectorRow.chunk_id == KbChunkRefRow.chunk_id) & (KbVectorRow.model == embeddings.MODEL),
            )
            .where(KbChunkRefRow.document_id == document_id)
            .order_by(KbChunkRefRow.start)
            .offset((page - 1) * per_page)
            .limit(per_page)
        ).all()
        views = [
            ChunkView(
                chunk_id=ref.chunk_id,
                section=ref.section,
                start=ref.start,
                end=ref.end,
                text=text,
                embedded=vector is not None,
            )
            for ref, text, vector in rows
        ]
    return views, total


def chunk_page(db: Database, document_id: str, start: int, per_page: int = 20) -> int:
    """Which page of :func:`chunks` shows the chunk at ``start`` (for a link from a search hit)."""
    with db.read_session() as session:
        before = session.execute(
            select(func.count())
            .select_from(KbChunkRefRow)
            .where(KbChunkRefRow.document_id == document_id, KbChunkRefRow.start < start)
        ).scalar_one()
    return int(before) // per_page + 1


def highlights(text: str, query: str) -> list[tuple[int, int]]:
    """Where the query's words (and, for Chinese, its character bigrams — robust to segmentation) occur in
    ``text``: merged, ordered ``(start, end)`` spans, case-insensitive."""
    words = tokens.words(query)
    terms = {w for w in words if len(w) >= 2} | {b for b in bigrams(query) if len(b) == 2}
    terms = terms or set(words)  # a one-character query still shows where it matched
    # matched in ``text`` itself: lower-casing first can change the length ("İ" → "i̇") and shift the spans
    spans = sorted(
        (m.start(), m.end())
        for term in terms
        if term
        for m in re.finditer(re.escape(term), text, re.IGNORECASE)
    )
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def segments(text: str, spans: list[tuple[int, int]]) -> list[tuple[str, bool]]:
    """``text`` cut at ``spans``: (piece, is it a match) in order, for a template to wrap in ``<mark>``."""
    out: list[tuple[str, bool]] = []
    at = 0
    for start, end in spans:
        if start > at:
            out.append((text[at:start], False))
        out.append((text[start:end], True))
        at = end
    if at < len(text):
        out.append((text[at:], False))
    return out
