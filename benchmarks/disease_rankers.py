"""The graph's two disease rankers on the same question — symptoms → ranked diseases — measured on the data we
have, to choose the one that serves it (docs/graph.md, "Two disease rankers"):

- ``dxy_dialog`` (DXY paediatric dialogues, Xu et al. 2019; 423 cases, five diseases): the case's disease
  from its present findings (and, for naive Bayes, its denied ones), over the dataset's five diseases
  (closed) and over every disease of the shipped packs (open), scored as in benchmarks/consult_dxy.py.
- ``triage_toyhom_im`` (a sample of 600 questions, seed 0): the triage-graph target's department accuracy
  when the diseases its symptoms point at come from one ranker or the other (top 5 each).

Both run over the shipped packs (benchmarks/packed.py), findings read by the consult findings reader.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import patch

from benchmarks.consult_dxy import EQUIVALENT, LABELS, cases
from benchmarks.packed import packed_database
from medfusion.apps.consult.findings import from_terms
from medfusion.evaluation import datasets
from medfusion.evaluation.targets import TriageTarget
from medfusion.graph import Graph
from medfusion.graph.model import Relation

Ranker = Callable[[list[str], list[str], list[str] | None, int], list[str]]


def rankers(graph: Graph) -> dict[str, Ranker]:
    profiles: dict[str, list[str]] = {}
    q = graph.queries

    def overlap(present: list[str], absent: list[str], closed: list[str] | None, k: int) -> list[str]:
        names = q.names_by_symptom_overlap(present, k=100_000 if closed else k)
        return [n for n in names if n in closed][:k] if closed else names

    def bayes(present: list[str], absent: list[str], closed: list[str] | None, k: int) -> list[str]:
        return [r.disease for r in q.rank_by_naive_bayes(present, absent, closed, k=k, profiles=profiles)]

    def bayes_present(present: list[str], absent: list[str], closed: list[str] | None, k: int) -> list[str]:
        return bayes(present, [], closed, k)

    return {"symptom_overlap": overlap, "naive_bayes": bayes, "naive_bayes_present_only": bayes_present}


def dxy(graph: Graph, folder: Path) -> dict[str, Any]:
    rows = [(from_terms(graph, p, a), LABELS[label]) for p, a, label in cases(folder)]
    closed = list(LABELS.values())
    out: dict[str, Any] = {"cases": len(rows)}
    for name, ranker in rankers(graph).items():
        counts: Counter[str] = Counter()
        for found, gold in rows:
            accepted = EQUIVALENT.get(gold, {gold})
            shut = ranker(found.present, found.absent, closed, 5)
            wide = ranker(found.present, found.absent, None, 10)
            counts["closed_top1"] += shut[:1] == [gold]
            counts["closed_top3"] += gold in shut[:3]
            counts["open_top1"] += bool(wide[:1]) and wide[0] in accepted
            counts["open_top3"] += bool(accepted & set(wide[:3]))
            counts["open_top10"] += bool(accepted & set(wide[:10]))
        out[name] = {k: round(v / len(rows), 4) for k, v in sorted(counts.items())}
    return out


def triage(graph: Graph, folder: Path, limit: int = 600) -> dict[str, Any]:
    data = datasets.load("triage_toyhom_im", folder.parent, limit=limit, seed=0)
    out: dict[str, Any] = {"questions": len(data.items)}
    for name, ranker in rankers(graph).items():
        if name == "naive_bayes_present_only":
            continue  # a question has no denied findings: the same as naive_bayes
        target = TriageTarget(graph)

        def departments(names: list[str], rank: Ranker = ranker) -> list[tuple[str, int]]:
            votes: Counter[str] = Counter()
            for n in names:
                direct = [
                    x.name
                    for x in graph.queries.neighbours(n, Relation.belongs_to_department)
                    if x.direction == "out"
                ]
                if direct:
                    votes.update(direct)
                    continue
                for disease in rank([n], [], None, 5):
                    votes.update(
                        x.name
                        for x in graph.queries.neighbours(disease, Relation.belongs_to_department)
                        if x.direction == "out"
                    )
            return votes.most_common()

        top1 = top3 = 0
        with patch.object(graph.queries, "departments_for", departments):
            choices = [target.predict(item).choice for item in data.items]
        for item, choice in zip(data.items, choices, strict=True):
            top1 += choice[:1] == item.reference[:1]
            top3 += item.reference[0] in choice[:3]
        out[name] = {"top1": round(top1 / len(data.items), 4), "top3": round(top3 / len(data.items), 4)}
    return out


def run() -> dict[str, Any]:
    shared = Path(os.environ.get("MEDFUSION_SHARED_DATA", "../shared/data"))
    with tempfile.TemporaryDirectory() as tmp:
        db = packed_database(Path(tmp) / "rankers.db")
        graph = Graph(db)
        result = {
            "dxy_dialog": dxy(graph, shared / "dxy_dialog"),
            "triage_toyhom_im": triage(graph, shared / "triage_toyhom_im"),
        }
        db.dispose()
    return result
