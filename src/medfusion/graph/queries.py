"""What the graph answers: neighbours, typed paths, departments, and two disease rankings from symptoms.

- **Symptom overlap** (:meth:`GraphQueries.rank_by_symptom_overlap`): each observed symptom votes for every
  disease that lists it, weighted by its specificity, log(1 + #diseases / #diseases listing it) — an IDF
  sum over present findings only. Cheap (two aggregate queries), so it also pre-selects candidates.
- **Naive Bayes** (:meth:`GraphQueries.rank_by_naive_bayes`): a knowledge-based naive Bayes over each
  disease's symptom profile (its listed symptoms and the broader symptoms they are kinds of): a present
  finding in the profile is likely (P = 0.8), one outside it unlikely (0.05); an absent finding in the
  profile counts against (P(absent) = 0.2) and one outside it barely matters (0.95). Priors are equal — the
  graph has no prevalence — so the ranking is the likelihood ratio of the findings under each profile. The
  probabilities are a judgement call documented in docs/consult.md, not fitted; it ranks a closed candidate
  list (a referral question: which of these?) or, open, the diseases symptom overlap ranks first.

Which one serves which question, and the measurement behind it: docs/graph.md ("Two disease rankers").
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from pydantic import BaseModel

from medfusion.graph.lexicon import Lexicon
from medfusion.graph.model import EntityType, Relation
from medfusion.graph.store import Edge, GraphStore, Neighbour

P_PRESENT_IN = 0.8
P_PRESENT_OUT = 0.05
P_ABSENT_IN = 0.2
P_ABSENT_OUT = 0.95
OPEN_CANDIDATES = 40  # naive Bayes over the whole graph scores the diseases symptom overlap ranks first


class DiseaseCandidate(BaseModel):
    """A disease for a set of symptoms: its score (``method`` says which ranker), the symptoms that support
    it, its listed symptoms that were not observed, and its departments."""

    disease: str
    score: float
    method: str = "symptom_overlap"  # or naive_bayes (the posterior among the ranked candidates)
    supporting: list[str]
    not_observed: list[str]
    departments: list[str]


class Ranked(BaseModel):
    """A disease by naive Bayes."""

    disease: str
    probability: float  # normalised over the candidates ranked
    log_likelihood: float
    supporting: list[str]
    opposing: list[str]  # findings reported absent that the disease usually has
    unexplained: list[str]  # present findings outside the profile
    typical_not_reported: list[str]


class GraphQueries:
    def __init__(self, store: GraphStore, lexicon: Lexicon) -> None:
        self.store = store
        self.lexicon = lexicon

    def neighbours(self, name: str, relation: Relation | None = None, limit: int = 200) -> list[Neighbour]:
        """Typed edges of the entities called ``name``, both ways, each with its source."""
        return self.store.links(name, relation, limit)

    def path(
        self, start: str, goal: str, max_hops: int = 3, relations: Iterable[Relation] | None = None
    ) -> list[Edge]:
        """A shortest typed path between two named entities (edges read either way), breadth first and
        bounded: at most ``max_hops`` edges and a few thousand entities per level."""
        wanted = list(relations) if relations else list(Relation)
        sources = {e.id for e in self.lexicon.resolve(start)}
        targets = {e.id for e in self.lexicon.resolve(goal)}
        if not sources or not targets:
            return []
        came: dict[str, Edge | None] = dict.fromkeys(sources)
        frontier = list(sources)
        for _ in range(max_hops):
            if not frontier:
                break
            step = self.store.edges(wanted, heads=frontier) + self.store.edges(wanted, tails=frontier)
            current = set(frontier)
            nxt: list[str] = []
            for edge in step:
                for here, there in ((edge.head.id, edge.tail.id), (edge.tail.id, edge.head.id)):
                    if here in current and there not in came:
                        came[there] = edge
                        nxt.append(there)
            hit = next((t for t in nxt if t in targets), None)
            if hit is not None:
                chain: list[Edge] = []
                node = hit
                while (back := came[node]) is not None:
                    chain.append(back)
                    node = back.tail.id if back.head.id == node else back.head.id
                return chain[::-1]
            frontier = nxt[:5000]
        return []

    # --- symptom overlap ------------------------------------------------------------------------
    def _overlap_scores(self, wanted: set[str]) -> tuple[dict[str, float], dict[str, list[str]]]:
        """IDF-weighted votes of the given symptoms for every disease that lists one of them."""
        total = self.store.count(EntityType.disease) or 1
        spread = self.store.symptom_spread(wanted)
        scores: dict[str, float] = defaultdict(float)
        support: dict[str, list[str]] = defaultdict(list)
        for name, found in self.store.diseases_listing(wanted):
            scores[name] += math.log(1 + total / spread.get(found, 1))
            support[name].append(found)
        return scores, support

    def names_by_symptom_overlap(self, symptoms: list[str], k: int = 10) -> list[str]:
        """The diseases ``rank_by_symptom_overlap`` would rank first, names only (no per-disease lookups)."""
        wanted = {s.strip() for s in symptoms if s.strip()}
        if not wanted:
            return []
        scores, _ = self._overlap_scores(wanted)
        return sorted(scores, key=lambda d: (-scores[d], d))[:k]

    def rank_by_symptom_overlap(self, symptoms: list[str], k: int = 10) -> list[DiseaseCandidate]:
        """Diseases by specificity-weighted symptom overlap, each with its supporting symptoms, its listed
        symptoms that were not observed and its departments."""
        wanted = {s.strip() for s in symptoms if s.strip()}
        if not wanted:
            return []
        scores, support = self._overlap_scores(wanted)
        ranked = sorted(scores, key=lambda d: (-scores[d], d))[:k]
        result = []
        for name in ranked:
            listed = [n.name for n in self.neighbours(name, Relation.has_symptom) if n.direction == "out"]
            departments = [
                n.name for n in self.neighbours(name, Relation.belongs_to_department) if n.direction == "out"
            ]
            result.append(
                DiseaseCandidate(
                    disease=name,
                    score=round(scores[name], 4),
                    supporting=sorted(support[name]),
                    not_observed=[s for s in listed if s not in wanted],
                    departments=departments,
                )
            )
        return result

    # --- naive Bayes ----------------------------------------------------------------------------
    def symptom_profile(self, disease: str) -> list[str]:
        """The disease's symptoms and the broader symptoms they are kinds of (阵发性喷嚏 → 打喷嚏), so a
        general complaint matches a specific profile entry."""
        listed = [
            n.name for n in self.neighbours(disease, Relation.has_symptom, limit=200) if n.direction == "out"
        ]
        broader = [
            n.name
            for symptom in listed
            for n in self.neighbours(symptom, Relation.member_of, limit=10)
            if n.direction == "out" and n.type == "symptom"
        ]
        return list(dict.fromkeys([*listed, *broader]))

    def rank_by_naive_bayes(
        self,
        present: list[str],
        absent: list[str],
        candidates: Iterable[str] | None = None,
        k: int = 10,
        profiles: dict[str, list[str]] | None = None,
    ) -> list[Ranked]:
        """Diseases by the likelihood of the present and absent findings under each symptom profile.
        ``candidates``: a closed list (else the diseases symptom overlap ranks first); ``profiles``: a cache
        shared across calls (an evaluation ranks hundreds of cases)."""
        if candidates is None:
            pool = self.names_by_symptom_overlap(present, k=OPEN_CANDIDATES)
        else:
            pool = list(dict.fromkeys(candidates))
        scored: list[Ranked] = []
        for disease in pool:
            if profiles is None or disease not in profiles:
                listed = self.symptom_profile(disease)
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

    def diagnose(
        self, symptoms: list[str], absent: list[str] | None = None, k: int = 10
    ) -> list[DiseaseCandidate]:
        """Symptoms → ranked diseases, the question ``graph query diagnose``, ``/api/graph/diagnose`` and the
        agents' ``diseases_for_symptoms`` tool ask: by naive Bayes, chosen over symptom overlap by
        measurement (dxy_dialog, 423 cases: open top-1 0.567 vs 0.454, top-10 0.872 vs 0.740;
        ``python -m benchmarks.run disease_rankers``, docs/graph.md)."""
        present = list(dict.fromkeys(s.strip() for s in symptoms if s.strip()))
        if not present:
            return []
        denied = [a.strip() for a in absent or [] if a.strip()]
        result = []
        for r in self.rank_by_naive_bayes(present, denied, k=k):
            listed = [
                n.name for n in self.neighbours(r.disease, Relation.has_symptom) if n.direction == "out"
            ]
            departments = [
                n.name
                for n in self.neighbours(r.disease, Relation.belongs_to_department)
                if n.direction == "out"
            ]
            result.append(
                DiseaseCandidate(
                    disease=r.disease,
                    score=r.probability,
                    method="naive_bayes",
                    supporting=sorted(r.supporting),
                    not_observed=[s for s in listed if s not in present],
                    departments=departments,
                )
            )
        return result

    def departments_for(self, names: list[str]) -> list[tuple[str, int]]:
        """Departments for diseases, or for the diseases that symptoms point at."""
        votes: Counter[str] = Counter()
        for name in names:
            direct = [
                n.name for n in self.neighbours(name, Relation.belongs_to_department) if n.direction == "out"
            ]
            if direct:
                votes.update(direct)
                continue
            for candidate in self.rank_by_symptom_overlap([name], k=5):
                votes.update(candidate.departments)
        return votes.most_common()
