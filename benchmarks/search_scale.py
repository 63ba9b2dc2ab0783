"""Search at scale on synthetic data: the sparse side at 100k and 1M chunks — ours (bm25s over the stored
tokens, as the knowledge base builds it) side by side with rank_bm25 and SQLite FTS5 on the same tokens —
and the dense side at 100k and 1M synthetic 384-dimension vectors — the embedded backend's exact inner
product over a float32 matrix side by side with the scale-out backend's milvus-lite collection.

Each engine is built in its own forked process, so its memory is measured alone (resident-set growth
while building). Queries: 3–5 tokens drawn from the corpus's own distribution; p50/p95 of single queries.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384
TOP = 10


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def corpus(n: int, seed: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    """Chinese-like chunks: 30k pseudo-words (2–4 common characters), Zipf-distributed, 40–80 per chunk."""
    rng = np.random.default_rng(seed)
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    vocab = list(dict.fromkeys("".join(rng.choice(chars, size=rng.integers(2, 5))) for _ in range(32000)))[
        :30000
    ]
    ranks = np.arange(1, len(vocab) + 1)
    p = 1 / ranks**1.05
    p /= p.sum()
    lengths = rng.integers(40, 81, size=n)
    flat = rng.choice(len(vocab), size=int(lengths.sum()), p=p)
    docs, at = [], 0
    for length in lengths:
        docs.append([vocab[i] for i in flat[at : at + length]])
        at += length
    # queries from mid-frequency words (rank 50–5000), as a clinician's terms tend to be
    queries = [[vocab[int(i)] for i in rng.integers(50, 5000, size=rng.integers(3, 6))] for _ in range(100)]
    return docs, queries


def _timed(queries: list[list[str]], search: Callable[[list[str]], object]) -> dict[str, float]:
    times = []
    for query in queries:
        started = time.perf_counter()
        search(query)
        times.append(time.perf_counter() - started)
    times.sort()
    return {
        "query_ms_p50": round(statistics.median(times) * 1000, 2),
        "query_ms_p95": round(times[int(0.95 * (len(times) - 1))] * 1000, 2),
        "queries": len(times),
    }


def _ours(docs: list[list[str]], queries: list[list[str]]) -> dict[str, Any]:
    import bm25s

    before = _rss_mb()
    started = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(docs, show_progress=False)
    build = time.perf_counter() - started
    memory = _rss_mb() - before
    timing = _timed(queries, lambda q: retriever.retrieve([q], k=TOP, show_progress=False))
    return {
        "engine": "ours: bm25s over stored tokens",
        "build_s": round(build, 2),
        "memory_mb": round(memory),
        **timing,
    }


def _rank_bm25(docs: list[list[str]], queries: list[list[str]]) -> dict[str, Any]:
    from rank_bm25 import BM25Okapi

    before = _rss_mb()
    started = time.perf_counter()
    index = BM25Okapi(docs)
    build = time.perf_counter() - started
    memory = _rss_mb() - before
    few = queries[: 100 if len(docs) <= 200_000 else 20]  # it scores every document in Python
    timing = _timed(few, lambda q: np.argpartition(-index.get_scores(q), TOP)[:TOP])
    return {"engine": "rank_bm25 BM25Okapi", "build_s": round(build, 2), "memory_mb": round(memory), **timing}


def _fts5(docs: list[list[str]], queries: list[list[str]]) -> dict[str, Any]:
    before = _rss_mb()
    started = time.perf_counter()
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE chunks USING fts5(body, tokenize='unicode61')")
    db.executemany("INSERT INTO chunks(body) VALUES (?)", ((" ".join(d),) for d in docs))
    db.commit()
    build = time.perf_counter() - started
    memory = _rss_mb() - before

    def search(query: list[str]) -> list[Any]:
        match = " OR ".join(f'"{w}"' for w in query)
        return db.execute(
            "SELECT rowid FROM chunks WHERE chunks MATCH ? ORDER BY rank LIMIT ?", (match, TOP)
        ).fetchall()

    return {
        "engine": "SQLite FTS5 (bm25 rank)",
        "build_s": round(build, 2),
        "memory_mb": round(memory),
        **_timed(queries, search),
    }


def _dense(n: int) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    before = _rss_mb()
    started = time.perf_counter()
    matrix = rng.standard_normal((n, DIM), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    build = time.perf_counter() - started
    memory = _rss_mb() - before
    queries = rng.standard_normal((100, DIM), dtype=np.float32)

    def search(q: np.ndarray) -> np.ndarray:
        scores = matrix @ q
        top = np.argpartition(-scores, TOP)[:TOP]
        return top[np.argsort(-scores[top])]

    return {
        "engine": "ours: exact inner product, float32 matrix (numpy)",
        "build_s": round(build, 2),
        "memory_mb": round(memory),
        **_timed(list(queries), search),  # type: ignore[arg-type]
    }


def _milvus(n: int) -> dict[str, Any]:
    """The scale-out dense backend's engine: a milvus-lite collection (FLAT, inner product)."""
    from pymilvus import DataType, MilvusClient

    rng = np.random.default_rng(1)
    matrix = rng.standard_normal((n, DIM), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as folder:
        client = MilvusClient(str(Path(folder) / "bench.db"))
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
        index = client.prepare_index_params()
        index.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        client.create_collection("bench", schema=schema, index_params=index)
        before = _rss_mb()
        started = time.perf_counter()
        for start in range(0, n, 5000):
            block = matrix[start : start + 5000]
            client.insert("bench", [{"id": start + i, "vector": v.tolist()} for i, v in enumerate(block)])
        client.flush("bench")
        build = time.perf_counter() - started
        memory = _rss_mb() - before
        queries = rng.standard_normal((100, DIM), dtype=np.float32)
        client.search("bench", data=[queries[0].tolist()], limit=TOP)  # first search loads the segment
        timing = _timed(list(queries), lambda q: client.search("bench", data=[q.tolist()], limit=TOP))  # type: ignore[arg-type]
        client.close()
    return {
        "engine": "milvus-lite FLAT (pymilvus)",
        "build_s": round(build, 2),
        "memory_mb": round(memory),
        **timing,
    }


def _child(conn: Connection, job: str, n: int) -> None:
    try:
        if job in ("dense", "milvus"):
            conn.send(_dense(n) if job == "dense" else _milvus(n))
            return
        docs, queries = corpus(n)
        conn.send({"ours": _ours, "rank_bm25": _rank_bm25, "fts5": _fts5}[job](docs, queries))
    except Exception as error:  # report, do not hang the parent
        conn.send({"error": f"{type(error).__name__}: {error}"})


def _isolated(job: str, n: int) -> dict[str, Any]:
    parent, child = mp.get_context("fork").Pipe()
    process = mp.get_context("fork").Process(target=_child, args=(child, job, n))
    process.start()
    result: dict[str, Any] = parent.recv()
    process.join()
    return result


def run() -> dict[str, Any]:
    sizes = [int(s) for s in os.environ.get("MEDFUSION_BENCH_SEARCH_SIZES", "100000,1000000").split(",")]
    out: dict[str, Any] = {"chunk_tokens": "40-80 Zipf-distributed pseudo-words", "dim": DIM}
    for n in sizes:
        out[f"sparse_{n}"] = [_isolated(job, n) for job in ("ours", "rank_bm25", "fts5")]
        out[f"dense_{n}"] = [_isolated("dense", n), _isolated("milvus", n)]
    return out
