"""Reciprocal rank fusion (Cormack, Clarke & Büttcher, "Reciprocal rank fusion outperforms Condorcet and
individual rank learning methods", SIGIR 2009): an item scores Σ weight / (k + rank) over the rankings it
appears in, rank counted from 1, with k = 60 as in the paper.

The one fusion of rankings in the knowledge layer: the search channels (BM25 words, BM25 bigrams, dense —
the dense channel weighted ×3, :data:`medfusion.knowledge.base.DENSE_WEIGHT`) and the two retrieval rounds
of a cited answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

RRF_K = 60


def rrf(rankings: Iterable[tuple[Sequence[str], float]], k: int = RRF_K) -> dict[str, float]:
    """Fused scores of ``(ranking, weight)`` pairs, each ranking best first. The dict keeps the order in which
    items were first seen, so a stable sort by descending score breaks ties by first appearance."""
    fused: dict[str, float] = defaultdict(float)
    for ranking, weight in rankings:
        for rank, item in enumerate(ranking):
            fused[item] += weight / (k + rank + 1)
    return dict(fused)


def ordered(scores: dict[str, float]) -> list[str]:
    """Items best first; ties keep their first-seen order."""
    return sorted(scores, key=lambda item: -scores[item])
