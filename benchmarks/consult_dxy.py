"""The pocket chief physician's differential on ``dxy_dialog`` (DXY paediatric dialogues, Xu et al. 2019):
each case's self-reported and confirmed symptoms are its present findings, symptoms the parent denied its
absent findings; the task is the case's disease.

- **Closed set**: rank the dataset's five diseases (mapped to the graph's names below) — the referral
  question "which of these?"; against the most-frequent-class baseline.
- **Open set**: rank over every disease of the installed graph (the shipped packs); a prediction counts when
  it is the mapped disease or its listed equivalent (paediatric and adult pneumonia, for example).

No training: the ranking is the knowledge graph's naive Bayes (``GraphQueries.rank_by_naive_bayes``,
graph/queries.py) over the shipped packs' symptom profiles. The symptom-lexicon pack (lay words → clinical
names and a small symptom hierarchy) was written while reading this dataset's symptom list, so the numbers
may be optimistic for other populations; the disease profiles were not changed for it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.packed import packed_database
from medfusion.apps.consult.findings import from_terms
from medfusion.graph import Graph
from medfusion.store.database import Database

LABELS = {
    "过敏性鼻炎": "变应性鼻炎",
    "上呼吸道感染": "急性上呼吸道感染",
    "肺炎": "儿童社区获得性肺炎",
    "小儿手足口病": "手足口病",
    "小儿腹泻": "儿童急性感染性腹泻",
}
EQUIVALENT = {
    "儿童社区获得性肺炎": {"儿童社区获得性肺炎", "社区获得性肺炎"},
    "儿童急性感染性腹泻": {"儿童急性感染性腹泻", "急性感染性腹泻"},
}


def cases(folder: Path) -> list[tuple[list[str], list[str], str]]:
    out = []
    for line in (folder / "train.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        goal = row["goal"]
        slots = {**goal["explicit_inform_slots"], **goal["implicit_inform_slots"]}
        present = [s for s, v in slots.items() if v]
        absent = [s for s, v in goal["implicit_inform_slots"].items() if not v]
        out.append((present, absent, row["disease_tag"]))
    return out


def evaluate(db: Database, folder: Path) -> dict[str, Any]:
    graph = Graph(db)
    rows = cases(folder)
    closed = list(LABELS.values())
    counts: Counter[str] = Counter()
    unmatched: Counter[str] = Counter()
    labels = Counter(label for _, _, label in rows)
    profiles: dict[str, list[str]] = {}
    for present, absent, label in rows:
        found = from_terms(graph, present, absent)
        unmatched.update(found.unmatched)
        gold = LABELS[label]
        accepted = EQUIVALENT.get(gold, {gold})
        closed_names = [
            r.disease
            for r in graph.queries.rank_by_naive_bayes(
                found.present, found.absent, candidates=closed, k=5, profiles=profiles
            )
        ]
        open_names = [
            r.disease
            for r in graph.queries.rank_by_naive_bayes(found.present, found.absent, k=10, profiles=profiles)
        ]
        counts["closed_top1"] += closed_names[:1] == [gold]
        counts["closed_top3"] += gold in closed_names[:3]
        counts["open_top1"] += bool(open_names[:1]) and open_names[0] in accepted
        counts["open_top3"] += bool(accepted & set(open_names[:3]))
        counts["open_top10"] += bool(accepted & set(open_names[:10]))
    n = len(rows)
    return {
        "cases": n,
        "labels": dict(labels),
        "baseline_most_frequent": round(max(labels.values()) / n, 4),
        **{k: round(v / n, 4) for k, v in sorted(counts.items())},
        "unmatched_terms": dict(unmatched.most_common(12)),
    }


def run() -> dict[str, Any]:
    folder = Path(os.environ.get("MEDFUSION_SHARED_DATA", "../shared/data")) / "dxy_dialog"
    with tempfile.TemporaryDirectory() as tmp:
        db = packed_database(Path(tmp) / "dxy.db")
        result = evaluate(db, folder)
        db.dispose()
    return result
