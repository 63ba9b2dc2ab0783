"""Reciprocal rank fusion (Cormack, Clarke & Büttcher, "Reciprocal rank fusion outperforms Condorcet and
individual rank learning methods", SIGIR 2009): an item scores Σ weight / (k + rank) over the rankings it
appears in, rank counted from 1, with k = 60 as in the paper.

The one fusion of rankings in the knowledge layer: the search channels (BM25 words, BM25 bigrams, dense —
the dense channel weighted ×3, :data:`medfusion.knowledge.base.DENSE_WEIGHT`) and the two retrieval rounds
of a cited answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable, Sequence

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


def rrf_eligible(
    rankings: Sequence[tuple[Sequence[str], float, Container[str] | None]], k: int = RRF_K
) -> dict[str, float]:
    """Reciprocal rank fusion over the rankings each item is *eligible* for: ``(ranking, weight, eligible)``,
    where ``eligible`` is the set of items the ranking could have placed (``None``: every item).

    An item scores its weighted mean reciprocal rank over its eligible rankings, rescaled to the total
    weight: ``W / W(item) · Σ_eligible weight / (k + rank)``. When every item is eligible for every
    ranking this is exactly :func:`rrf`. An item a ranking could not see (a chunk without a vector, for
    the dense channel) is neither scored zero there — which would put it below every item that ranking
    could see — nor given a free place: it counts as doing in the missing ranking what it did, on
    average, in the ones it was in. Absent from an eligible ranking still counts as zero (that ranking
    saw the item and passed it over)."""
    total = sum(weight for _, weight, _ in rankings)
    fused: dict[str, float] = defaultdict(float)
    for ranking, weight, _ in rankings:
        for rank, item in enumerate(ranking):
            fused[item] += weight / (k + rank + 1)
    for item in fused:
        available = sum(weight for _, weight, eligible in rankings if eligible is None or item in eligible)
        if 0 < available < total:
            fused[item] *= total / available
    return dict(fused)
