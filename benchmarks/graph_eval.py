"""Conflict-check evaluation against the shipped drug-safety pack.

- **Planted plans**: every alert-level rule of the seed set (interaction, contraindication, cross-reactivity)
  is planted once with concrete members at both ends (a class rule is planted with drugs, procedures or
  conditions that belong to the class) — recall must be 100 %.
- **Random plans**: random plans of drugs, one condition and one allergy, compared pair by pair with an
  oracle computed straight from the pack's CSV files in memory (a second implementation of the same
  reading of the rules), which also yields the clean plans: those the oracle finds nothing in must raise
  no alarm.
"""

from __future__ import annotations

import csv
import random
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from medfusion.graph import Graph
from medfusion.graph.conflicts import ConflictChecker, ConflictReport
from medfusion.graph.model import NOT_AN_ALERT, SEVERITY_RANK, Severity
from medfusion.knowledge import packs
from medfusion.store.database import Database

PACK = packs.SHIPPED / "drug-safety"
CLIMB = {"member_of", "uses_agent"}
RULES = {"interacts_with", "contraindicated_in", "cross_reacts_with"}


class Oracle:
    """The seed's rules read directly from its CSV files."""

    def __init__(self, pack: Path = PACK) -> None:
        with (pack / "triples.csv").open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        self.types = {r["head"]: r["head_type"] for r in rows} | {r["tail"]: r["tail_type"] for r in rows}
        self.up: dict[str, set[str]] = defaultdict(set)
        for r in rows:
            if r["relation"] in CLIMB:
                self.up[r["head"]].add(r["tail"])
        self.rules = [r for r in rows if r["relation"] in RULES]

    def reach(self, name: str) -> dict[str, int]:
        """Ancestors with their distance (edges climbed)."""
        found, frontier = {name: 0}, [name]
        while frontier:
            nxt = []
            for node in frontier:
                for parent in self.up.get(node, ()):
                    if parent not in found:
                        found[parent] = found[node] + 1
                        nxt.append(parent)
            frontier = nxt
        return found

    def leaves(self, name: str) -> list[str]:
        """Concrete items (nothing is a member of them) that belong to ``name``, or ``name`` itself."""
        members = [
            n for n in self.types if name in self.reach(n) and not any(n in v for v in self.up.values())
        ]
        return sorted(members) or [name]

    def verdict(self, relation: str, a: str, b: str, both_ways: bool) -> str | None:
        """The severity of the most specific rule between a and b (shortest path, then most severe)."""
        ra, rb = self.reach(a), self.reach(b)
        best: tuple[int, int, str] | None = None
        for rule in self.rules:
            if rule["relation"] != relation:
                continue
            pairs = [(rule["head"], rule["tail"])]
            if both_ways:
                pairs.append((rule["tail"], rule["head"]))
            for head, tail in pairs:
                if head in ra and tail in rb:
                    candidate = (
                        ra[head] + 1 + rb[tail],
                        -SEVERITY_RANK[Severity(rule["severity"])],
                        rule["severity"],
                    )
                    best = candidate if best is None or candidate[:2] < best[:2] else best
        return best[2] if best else None

    def alerts(self, conditions: list[str], allergies: list[str], drugs: list[str]) -> set[tuple[str, ...]]:
        found: set[tuple[str, ...]] = set()
        for i, a in enumerate(drugs):
            for b in drugs[i + 1 :]:
                severity = self.verdict("interacts_with", a, b, both_ways=True)
                if severity and Severity(severity) not in NOT_AN_ALERT:
                    found.add(("drug_interaction", *sorted((a, b))))
            for condition in conditions:
                severity = self.verdict("contraindicated_in", a, condition, both_ways=False)
                if severity and Severity(severity) not in NOT_AN_ALERT:
                    found.add(("contraindication", a, condition))
            for allergen in allergies:
                if allergen in self.reach(a):
                    found.add(("allergy", allergen, a))
                    continue
                severity = self.verdict("cross_reacts_with", allergen, a, both_ways=True)
                if severity and Severity(severity) not in NOT_AN_ALERT:
                    found.add(("allergy", allergen, a))
        return found


def _pairs(report: ConflictReport) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for c in report.conflicts:
        if c.type == "drug_interaction":
            found.add(("drug_interaction", *sorted(c.items)))
        elif c.type == "contraindication":
            found.add(("contraindication", *c.items))
        else:
            found.add(("allergy", *c.items))
    return found


def planted(oracle: Oracle) -> list[tuple[dict[str, list[str]], tuple[str, ...]]]:
    """One plan per alert-level rule, with concrete members at both ends."""
    plans = []
    for rule in oracle.rules:
        if Severity(rule["severity"]) in NOT_AN_ALERT:
            continue
        heads, tails = oracle.leaves(rule["head"]), oracle.leaves(rule["tail"])
        head = heads[0]
        tail = next((t for t in tails if t != head), None)
        if tail is None:
            continue
        if rule["relation"] == "interacts_with":
            role = "procedures" if oracle.types[tail] == "procedure" else "drugs"
            plan = {"drugs": [head], role: [tail]} if role == "procedures" else {"drugs": [head, tail]}
            if oracle.types[head] == "procedure":
                plan = {"procedures": [head], "drugs": [tail]}
            plans.append((plan, ("drug_interaction", *sorted((head, tail)))))
        elif rule["relation"] == "contraindicated_in":
            role = "procedures" if oracle.types[head] == "procedure" else "drugs"
            plans.append(({role: [head], "conditions": [tail]}, ("contraindication", head, tail)))
        else:
            role = "procedures" if oracle.types[tail] == "procedure" else "drugs"
            plans.append(({"allergies": [head], role: [tail]}, ("allergy", head, tail)))
    return plans


def run(random_plans: int = 300, seed: int = 0) -> dict[str, Any]:
    oracle = Oracle()
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'graph.db'}")
        db.upgrade()
        started = time.perf_counter()
        packs.install(db, PACK)
        install_s = time.perf_counter() - started
        checker = ConflictChecker(Graph(db))
        missed = []
        latencies = []
        plans = planted(oracle)
        for plan, expected in plans:
            started = time.perf_counter()
            report = checker.check(**plan)
            latencies.append(time.perf_counter() - started)
            if expected not in _pairs(report):
                missed.append({"plan": plan, "expected": list(expected)})
        rng = random.Random(seed)
        drugs = sorted(n for n, t in oracle.types.items() if t == "drug")
        conditions = sorted({n for n, t in oracle.types.items() if t == "disease"})
        agree = disagree = clean = false_alarms = expected_total = found_total = 0
        examples: list[dict[str, Any]] = []
        for _ in range(random_plans):
            plan = {
                "conditions": [rng.choice(conditions)],
                "allergies": [rng.choice(drugs)],
                "drugs": rng.sample(drugs, 3),
            }
            truth = oracle.alerts(**plan)
            started = time.perf_counter()
            got = _pairs(checker.check(**plan))
            latencies.append(time.perf_counter() - started)
            expected_total += len(truth)
            found_total += len(got)
            agree += len(truth & got)
            if truth != got:
                disagree += 1
                if len(examples) < 5:
                    examples.append({"plan": plan, "oracle": sorted(truth), "checker": sorted(got)})
            if not truth:
                clean += 1
                false_alarms += bool(got)
        db.dispose()
    return {
        "pack": "drug-safety",
        "install_s": round(install_s, 2),
        "planted_plans": len(plans),
        "planted_recall": round((len(plans) - len(missed)) / max(len(plans), 1), 4),
        "missed": missed[:10],
        "random_plans": random_plans,
        "random_pairs_expected": expected_total,
        "random_pairs_found": found_total,
        "random_pairs_agreeing": agree,
        "random_plans_disagreeing": disagree,
        "disagreement_examples": examples,
        "clean_plans": clean,
        "clean_plans_with_false_alarm": false_alarms,
        "check_latency_ms_p50": round(statistics.median(latencies) * 1000, 1),
        "check_latency_ms_p95": round(sorted(latencies)[int(0.95 * len(latencies))] * 1000, 1),
    }
