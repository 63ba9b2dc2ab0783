"""The embedded graph backend, measured: our SQL tables (SQLite) side by side with kglite (an embedded Cypher
graph) on the same kg39_disease triples — import time, a disease's neighbours, the diseases that share a
symptom set (the ranking query's core), and a two-hop neighbourhood."""

from __future__ import annotations

import csv
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

QUERIES = ["糖尿病", "高血压", "肺炎", "冠心病", "胃炎", "偏头痛", "哮喘", "肝硬化", "痛风", "贫血"]
SYMPTOMS = [["咳嗽", "发热", "咳痰"], ["头痛", "恶心", "呕吐"], ["腹痛", "腹泻"], ["胸痛", "胸闷", "心悸"]]


def _p50_ms(fn: Callable[[Any], object], items: list[Any]) -> float:
    times = []
    for _ in range(3):
        for item in items:
            started = time.perf_counter()
            fn(item)
            times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 2)


def _ours(folder: Path, work: Path) -> dict[str, Any]:
    from medfusion.graph import Graph, importers
    from medfusion.graph.model import Relation
    from medfusion.store.database import Database

    db = Database(f"sqlite:///{work / 'graph.db'}")
    db.upgrade()
    graph = Graph(db)
    started = time.perf_counter()
    graph.store.add(importers.kg39(folder))
    seconds = time.perf_counter() - started

    def two_hop(name: str) -> int:
        first = graph.queries.neighbours(name, limit=100_000)
        return sum(len(graph.queries.neighbours(n.name, limit=100_000)) for n in first)

    result = {
        "engine": "ours: SQL tables (SQLite)",
        "import_s": round(seconds, 2),
        "neighbours_ms_p50": _p50_ms(lambda n: graph.queries.neighbours(n), QUERIES),
        "symptom_ranking_ms_p50": _p50_ms(lambda s: graph.queries.rank_by_symptom_overlap(s, k=10), SYMPTOMS),
        "two_hop_ms_p50": _p50_ms(two_hop, QUERIES[:5]),
        "has_symptom_edges": graph.store.counts()["relations"].get(Relation.has_symptom.value, 0),
    }
    db.dispose()
    return result


def _kglite(folder: Path) -> dict[str, Any]:
    import kglite
    import pandas as pd

    with (folder / "relations.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["head"].strip() and r["tail"].strip()]
    started = time.perf_counter()
    graph = kglite.KnowledgeGraph()
    names = sorted({r["head"] for r in rows} | {r["tail"] for r in rows})
    graph.add_nodes(pd.DataFrame({"name": names}), "Entity", "name", "name")
    frame = pd.DataFrame(rows)
    for relation, part in frame.groupby("relation"):
        graph.add_relationships(part, str(relation), "Entity", "head", "Entity", "tail", distinct=True)
    seconds = time.perf_counter() - started

    def neighbours(name: str) -> list[Any]:
        return list(
            graph.cypher("MATCH (a:Entity {name: $n})-[r]-(b) RETURN type(r), b.name", params={"n": name})
        )

    def ranking(symptoms: list[str]) -> list[Any]:
        query = (
            "MATCH (d:Entity)-[:HAS_SYMPTOM]->(s:Entity) WHERE s.name IN $s "
            "RETURN d.name AS disease, count(s) AS hits ORDER BY hits DESC LIMIT 10"
        )
        return list(graph.cypher(query, params={"s": symptoms}))

    def two_hop(name: str) -> list[Any]:
        # kglite 0.21 returns 0 for "(a:Entity {name: $n})-[]-(b)-[]-(c)"; the WHERE form is correct
        query = "MATCH (a:Entity)-[r1]-(b:Entity)-[r2]-(c:Entity) WHERE a.name = $n RETURN count(*)"
        return list(graph.cypher(query, params={"n": name}))

    edges = [row["count(r)"] for row in graph.cypher("MATCH ()-[r:HAS_SYMPTOM]->() RETURN count(r)")]
    return {
        "engine": "kglite 0.21 (embedded Cypher)",
        "import_s": round(seconds, 2),
        "neighbours_ms_p50": _p50_ms(neighbours, QUERIES),
        "symptom_ranking_ms_p50": _p50_ms(ranking, SYMPTOMS),
        "two_hop_ms_p50": _p50_ms(two_hop, QUERIES[:5]),
        "has_symptom_edges": edges[0] if edges else None,
    }


def run() -> dict[str, Any]:
    folder = Path(os.environ.get("MEDFUSION_SHARED_DATA", "../shared/data")) / "kg39_disease"
    with tempfile.TemporaryDirectory() as work:
        ours = _ours(folder, Path(work))
    return {"dataset": "kg39_disease relations.csv", "engines": [ours, _kglite(folder)]}
