"""Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): the worked formula, and the same rankings
as the two copies it replaced (knowledge base channels with the dense weight, and an answer's two rounds)."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given
from hypothesis import strategies as st

from medfusion.knowledge.base import DENSE_WEIGHT
from medfusion.knowledge.fusion import RRF_K, ordered, rrf


def test_rrf_scores_weight_over_k_plus_rank_from_one() -> None:
    fused = rrf([(["a", "b"], 1.0), (["b", "c"], 3.0)])
    assert RRF_K == 60
    assert fused == {"a": 1 / 61, "b": 1 / 62 + 3 / 61, "c": 3 / 62}
    assert ordered(fused) == ["b", "c", "a"]


def test_ties_keep_first_seen_order() -> None:
    assert ordered(rrf([(["x", "y"], 1.0), (["y", "x"], 1.0)])) == ["x", "y"]


def _channels_before(ranked: list[tuple[str, list[str], float]]) -> list[tuple[str, float]]:
    """knowledge/base.py's search fusion as it was written before fusion.py."""
    fused: dict[str, float] = defaultdict(float)
    for _, chunks, weight in ranked:
        for rank, chunk in enumerate(chunks):
            fused[chunk] += weight / (RRF_K + rank + 1)
    return [(c, fused[c]) for c in sorted(fused, key=lambda c: -fused[c])]


def _rounds_before(rounds: list[list[str]], k: int) -> list[tuple[str, float]]:
    """knowledge/answers.py's ``_fuse`` as it was written before fusion.py."""
    score: dict[str, float] = defaultdict(float)
    for hits in rounds:
        for rank, hit in enumerate(hits):
            score[hit] += 1 / (RRF_K + rank + 1)
    return [(c, round(score[c], 6)) for c in sorted(score, key=lambda c: -score[c])[:k]]


_RANKING = st.lists(st.sampled_from([f"c{i}" for i in range(12)]), max_size=10, unique=True)


@given(words=_RANKING, bigrams=_RANKING, dense=_RANKING)
def test_same_ranking_as_the_search_channels_copy(
    words: list[str], bigrams: list[str], dense: list[str]
) -> None:
    ranked = [("dense", dense, DENSE_WEIGHT), ("words", words, 1.0), ("bigrams", bigrams, 1.0)]
    fused = rrf((chunks, weight) for _, chunks, weight in ranked)
    assert [(c, fused[c]) for c in ordered(fused)] == _channels_before(ranked)


@given(first=_RANKING, second=_RANKING, k=st.integers(1, 12))
def test_same_ranking_as_the_answer_rounds_copy(first: list[str], second: list[str], k: int) -> None:
    fused = rrf([(first, 1.0), (second, 1.0)])
    assert [(c, round(fused[c], 6)) for c in ordered(fused)[:k]] == _rounds_before([first, second], k)
