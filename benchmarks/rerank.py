"""Does a rerank stage help? A small ranker trained on our data, measured before it is adopted.

The candidates are the served hybrid's top 30 for each question of ``triage_toyhom_im``. Features per
(question, candidate): the reciprocal rank in each channel (words, bigrams, dense), the fused position, how
much of the question's bigrams the passage covers and how much of the passage the question covers, and the
passage length. A logistic regression (numpy, L2) is trained on a tuning split (seed 1, questions disjoint
from the evaluation sample) and evaluated on the evaluation sample (seed 0, 500 questions) against the
served order. Needs the retrieval benchmark's work folder (its knowledge base with vectors).
"""

from __future__ import annotations

import csv
import math
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

CANDIDATES = 30


def _features(question: str, hits: list[Any]) -> np.ndarray:
    from medfusion.knowledge import tokens

    wanted = set(tokens.bigrams(question))
    rows = []
    for position, hit in enumerate(hits):
        grams = set(tokens.bigrams(hit.text))
        ranks = hit.channels
        rows.append(
            [
                *(1 / (60 + ranks[c]) * 60 if c in ranks else 0.0 for c in ("words", "bigrams", "dense")),
                1 / (1 + position),
                len(wanted & grams) / max(len(wanted), 1),
                len(wanted & grams) / max(len(grams), 1),
                math.log(1 + len(hit.text)) / 7,
            ]
        )
    return np.asarray(rows, dtype=np.float64)


def _train(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 3000) -> np.ndarray:
    x1 = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(x1.shape[1])
    positive = max(y.mean(), 1e-6)
    weight = np.where(y == 1, 0.5 / positive, 0.5 / (1 - positive))  # balance the one right answer
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x1 @ w)))
        grad = x1.T @ (weight * (p - y)) / len(y) + l2 * w
        w -= 0.5 * grad
    return w


def _ranks(
    questions: list[tuple[int, str]], candidates: list[list[Any]], w: np.ndarray | None
) -> list[int | None]:
    ranks: list[int | None] = []
    for (i, question), hits in zip(questions, candidates, strict=True):
        order = list(range(len(hits)))
        if w is not None and hits:
            x = np.hstack([_features(question, hits), np.ones((len(hits), 1))])
            order = list(np.argsort(-(x @ w), kind="stable"))
        sources = [hits[j].source for j in order][:10]
        ranks.append(sources.index(f"triage:{i}") + 1 if f"triage:{i}" in sources else None)
    return ranks


def run() -> dict[str, Any]:
    from benchmarks.retrieval import _metrics
    from medfusion.knowledge.base import KnowledgeBase
    from medfusion.store.database import Database

    shared = Path(os.environ.get("MEDFUSION_SHARED_DATA", "../shared/data"))
    with (shared / "triage_toyhom_im" / "train.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    random.seed(0)
    evaluation = random.sample(range(len(rows)), 500)
    rng = random.Random(1)
    tuning = [i for i in rng.sample(range(len(rows)), 900) if i not in set(evaluation)][:400]
    workdir = Path(os.environ.get("MEDFUSION_BENCH_DIR", tempfile.gettempdir())) / "medfusion-bench-retrieval"
    kb = KnowledgeBase(Database(f"sqlite:///{workdir}/kb.db"))

    def candidates(sample: list[int]) -> tuple[list[tuple[int, str]], list[list[Any]]]:
        questions = [(i, rows[i]["title"] + " " + rows[i]["ask"]) for i in sample]
        return questions, [kb.search(q, k=CANDIDATES) for _, q in questions]

    tune_q, tune_c = candidates(tuning)
    x = np.vstack([_features(q, hits) for (_, q), hits in zip(tune_q, tune_c, strict=True) if hits])
    y = np.concatenate(
        [
            [1.0 if h.source == f"triage:{i}" else 0.0 for h in hits]
            for (i, _), hits in zip(tune_q, tune_c, strict=True)
        ]
    )
    w = _train(x, y)
    eval_q, eval_c = candidates(evaluation)
    return {
        "tuning_questions": len(tuning),
        "evaluation_questions": len(evaluation),
        "candidates": CANDIDATES,
        "served_hybrid": _metrics(_ranks(eval_q, eval_c, None)),
        "reranked": _metrics(_ranks(eval_q, eval_c, w)),
        "weights": [round(float(v), 4) for v in w],
        "features": [
            "rrf_words",
            "rrf_bigrams",
            "rrf_dense",
            "fused_position",
            "query_coverage",
            "passage_focus",
            "log_length",
            "bias",
        ],
    }
