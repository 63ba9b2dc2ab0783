"""Retrieval re-weighting from clinician feedback, measured by replay on ``triage_toyhom_im``.

All 6,150 answers are indexed (sparse channels: words + bigrams, so the run is minutes, not hours). The
questions are shuffled (seed 1) into three disjoint slices: **train** (replayed decisions), **dev** (choosing
the prior's weight) and **test** (the reported numbers). Replay: for each train question the answer cites the
top three passages; the simulated clinician accepts when the question's true answer is among them, else
rejects — and the decision is recorded exactly as ``medfusion feedback`` records it (every cited passage
counts one accepted or rejected answer for that question). MRR@10 and recall@1/5 on the test slice, before
and after, with the weight and similarity threshold chosen on dev; and on a **re-asked** slice — train
questions asked again in other words (the ``ask`` text alone, without the title) — which is where feedback on
similar questions is meant to help.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from typing import Any

from benchmarks.retrieval import ingest_answers, triage_rows
from medfusion.feedback import prior as feedback_prior
from medfusion.knowledge.base import KnowledgeBase
from medfusion.settings import get_settings
from medfusion.store.database import Database

CHANNELS = ("words", "bigrams")
CITED = 3
GRID = [(w, t) for w in (0.5, 1.0, 2.0) for t in (0.4, 0.6, 0.8)]


def _metrics(kb: KnowledgeBase, items: list[tuple[int, str]]) -> dict[str, float]:
    ranks = []
    for i, question in items:
        sources = [h.source for h in kb.search(question, k=10, channels=CHANNELS)]
        ranks.append(sources.index(f"triage:{i}") + 1 if f"triage:{i}" in sources else None)
    n = len(ranks)
    return {
        "mrr": round(sum(1 / r for r in ranks if r) / n, 4),
        "recall@1": round(sum(r == 1 for r in ranks) / n, 4),
        "recall@5": round(sum(r is not None and r <= 5 for r in ranks) / n, 4),
    }


def run(train: int = 3000, dev: int = 500, test: int = 1000) -> dict[str, Any]:
    rows = triage_rows()
    order = list(range(len(rows)))
    random.Random(1).shuffle(order)
    questions = [(i, rows[i]["title"] + " " + rows[i]["ask"]) for i in order]
    train_set, dev_set = questions[:train], questions[train : train + dev]
    test_set = questions[train + dev : train + dev + test]
    with tempfile.TemporaryDirectory() as folder:
        os.environ["MEDFUSION_DATA_DIR"] = folder
        get_settings.cache_clear()
        db = Database(f"sqlite:///{folder}/replay.db")
        db.upgrade()
        kb = KnowledgeBase(db)
        ingest = ingest_answers(kb, rows)
        kb.use_feedback = False
        before_dev, before_test = _metrics(kb, dev_set), _metrics(kb, test_set)
        accepted = 0
        started = time.perf_counter()
        for i, question in train_set:
            cited = kb.search(question, k=CITED, channels=CHANNELS)
            ok = any(h.source == f"triage:{i}" for h in cited)
            accepted += ok
            with db.session() as session:
                feedback_prior.record(session, question, [h.chunk_id for h in cited], 1.0 if ok else -1.0)
        replay = time.perf_counter() - started
        kb.use_feedback = True
        defaults = feedback_prior.WEIGHT, feedback_prior.THRESHOLD
        reasked = [(i, rows[i]["ask"]) for i, _ in train_set[:test]]  # the same questions in other words
        on_dev: dict[str, dict[str, float]] = {}
        try:
            for weight, threshold in GRID:
                feedback_prior.WEIGHT, feedback_prior.THRESHOLD = weight, threshold
                on_dev[f"w={weight},t={threshold}"] = _metrics(kb, dev_set)
            best = max(GRID, key=lambda g: on_dev[f"w={g[0]},t={g[1]}"]["mrr"])
            feedback_prior.WEIGHT, feedback_prior.THRESHOLD = best
            after_test = _metrics(kb, test_set)
            feedback_prior.WEIGHT, feedback_prior.THRESHOLD = defaults
            at_default = _metrics(kb, test_set)
            reasked_after = _metrics(kb, reasked)
            kb.use_feedback = False
            reasked_before = _metrics(kb, reasked)
        finally:
            feedback_prior.WEIGHT, feedback_prior.THRESHOLD = defaults
        db.dispose()
    return {
        "documents": len(rows),
        "slices": {"train": len(train_set), "dev": len(dev_set), "test": len(test_set)},
        "channels": list(CHANNELS),
        "replayed_decisions": len(train_set),
        "accepted_share": round(accepted / len(train_set), 4),
        "dev_before": before_dev,
        "dev_by_setting": on_dev,
        "chosen": {"weight": best[0], "threshold": best[1]},
        "test_before": before_test,
        "test_after": after_test,
        "shipped": {"weight": defaults[0], "threshold": defaults[1]},
        "test_after_shipped": at_default,
        "reasked_before": reasked_before,
        "reasked_after_shipped": reasked_after,
        "ingest_seconds": round(ingest, 1),
        "replay_seconds": round(replay, 1),
    }
