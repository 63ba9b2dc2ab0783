"""Ranking diagnoses from findings over the knowledge graph's disease–symptom profiles.

A knowledge-based naive Bayes: each disease's listed symptoms (and the broader symptoms they are kinds
of) are its profile; a present finding in the
profile is likely (P = 0.8), one outside it unlikely (0.05); an absent finding in the profile counts against
(P(absent) = 0.2) and one outside it barely matters (0.95). Priors are equal — the graph has no prevalence —
so the ranking is the likelihood ratio of the findings under each profile. The probabilities are a
judgement call documented in docs/consult.md, not fitted; the same scoring runs over a closed candidate
list (a referral question: which of these?) or the whole graph (candidates: every disease sharing a
present finding).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from pydantic import BaseModel

from medfusion.graph.model import Relation
from medfusion.graph.store import GraphStore

P_PRESENT_IN = 0.8
P_PRESENT_OUT = 0.05
P_ABSENT_IN = 0.2
P_ABSENT_OUT = 0.95
OPEN_CANDIDATES = 40


class Ranked(BaseModel):
    disease: str
    probability: float  # normalised over the candidates ranked
    log_likelihood: float
    supporting: list[str]
    opposing: list[str]  # findings reported absent that the disease usually has
    unexplained: list[str]  # present findings outside the profile
    typical_not_reported: list[str]


def profile(graph: GraphStore, disease: str) -> list[str]:
    """The disease's symptoms and the broader symptoms they are kinds of (阵发性喷嚏 → 打喷嚏), so a
    general complaint matches a specific profile entry."""
    listed = [
        n.name for n in graph.neighbours(disease, Relation.has_symptom, limit=200) if n.direction == "out"
    ]
    broader = [
        n.name
        for symptom in listed
        for n in graph.neighbours(symptom, Relation.member_of, limit=10)
        if n.direction == "out" and n.type == "symptom"
    ]
    return list(dict.fromkeys([*listed, *broader]))


def rank(
    graph: GraphStore,
    present: list[str],
    absent: list[str],
    candidates: Iterable[str] | None = None,
    k: int = 10,
    profiles: dict[str, list[str]] | None = None,
) -> list[Ranked]:
    """``profiles``: a cache shared across calls (an evaluation ranks hundreds of cases)."""
    if candidates is None:
        pool = graph.disease_names_for_symptoms(present, k=OPEN_CANDIDATES)
    else:
        pool = list(dict.fromkeys(candidates))
    scored: list[Ranked] = []
    for disease in pool:
        if profiles is None or disease not in profiles:
            listed = profile(graph, disease)
            if profiles is not None:
                profiles[disease] = listed
        else:
            listed = profiles[disease]
        symptoms = set(listed)
        if not symptoms:
            continue
        loglik = sum(math.log(P_PRESENT_IN if f in symptoms else P_PRESENT_OUT) for f in present)
        loglik += sum(math.log(P_ABSENT_IN if f in symptoms else P_ABSENT_OUT) for f in absent)
        scored.append(
            Ranked(
                disease=disease,
                probability=0.0,
                log_likelihood=round(loglik, 4),
                supporting=[f for f in present if f in symptoms],
                opposing=[f for f in absent if f in symptoms],
                unexplained=[f for f in present if f not in symptoms],
                typical_not_reported=sorted(symptoms - set(present) - set(absent))[:8],
            )
        )
    if not scored:
        return []
    top = max(s.log_likelihood for s in scored)
    weights = [math.exp(s.log_likelihood - top) for s in scored]
    total = sum(weights)
    for s, w in zip(scored, weights, strict=True):
        s.probability = round(w / total, 4)
    scored.sort(key=lambda s: (-s.log_likelihood, s.disease))
    return scored[:k]
