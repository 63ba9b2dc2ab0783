"""MDT evaluation.

- **Planted conflicts**: every alert-level rule of the drug-safety pack, planted into a synthetic chart
  with concrete members (the conflict-check evaluation's plans, benchmarks/graph_eval.py): the drugs as
  active medications, the condition as an active diagnosis, the allergy on the chart, a procedure as a
  proposal. Recall = plans whose rule appears in the MDT output's ``warnings``, naming both ends.
- **Clean cases**: synthetic residents' charts; a warning is a false alarm when the oracle read straight
  from the pack's CSV files finds no conflict among the case's diagnoses, allergies and drugs plus the drugs
  the consensus itself proposes.
- **Routing, latency, tokens**: a simple and a complex case against the scripted OpenAI server (each
  specialty agent calls one tool, then answers citing it), solo vs team.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.fakes.openai_server import Behaviour, FakeOpenAI, answer, tool_call

from benchmarks.graph_eval import Oracle, planted
from benchmarks.packed import packed_database
from medfusion.apps.mdt.models import MdtRequest, MdtResult
from medfusion.apps.mdt.service import MdtService
from medfusion.graph import Graph
from medfusion.llm import GeneralModel
from medfusion.record.models import AllergyIntolerance, Condition, MedicationRequest, PatientChart
from medfusion.settings import Settings
from medfusion.store.access import Principal
from medfusion.store.database import Database
from medfusion.synth import generate_population

DOCTOR = Principal("bench", "doctor")
START = datetime(2026, 1, 1, 8, tzinfo=UTC)
BASE = ("原发性高血压", "I10.x00")


def _code(graph: Graph, name: str) -> str:
    for e in graph.lexicon.resolve(name):
        if e.code_system == "ICD-10" and e.code:
            code = e.code if "." in e.code else f"{e.code}.x00"
            return code
    return "R69.x00"


def chart_for(graph: Graph, template: PatientChart, plan: dict[str, list[str]]) -> PatientChart:
    conditions = [(c, _code(graph, c)) for c in plan.get("conditions", [])] or [BASE]
    pid = template.patient.id
    return template.model_copy(
        update={
            "conditions": [
                Condition(id=f"{pid}-c{i}", name=n, icd10_code=code) for i, (n, code) in enumerate(conditions)
            ],
            "medications": [
                MedicationRequest(id=f"{pid}-m{i}", drug_name=d, start=START)
                for i, d in enumerate(plan.get("drugs", []))
            ],
            "allergies": [
                AllergyIntolerance(id=f"{pid}-a{i}", substance=a)
                for i, a in enumerate(plan.get("allergies", []))
            ],
            "procedures": [],
        }
    )


def _named(result: MdtResult, expected: tuple[str, ...]) -> bool:
    names = expected[1:]
    return any(w.code == "drug_conflict" and all(n in w.message for n in names) for w in result.warnings)


def conflicts_and_clean(db: Database, every: int = 1, clean_cases: int = 100) -> dict[str, Any]:
    graph = Graph(db)
    oracle = Oracle()
    service = MdtService(
        db, DOCTOR, GeneralModel.from_settings(Settings(data_dir=Path(tempfile.mkdtemp()))), graph=graph
    )
    template = next(iter(generate_population(1, seed=41)))
    plans = planted(oracle)[::every]
    missed: list[dict[str, Any]] = []
    times: list[float] = []
    for plan, expected in plans:
        chart = chart_for(graph, template, plan)
        request = MdtRequest(
            bundle={"resourceType": "Bundle"}, proposed_procedures=plan.get("procedures", [])
        )
        started = time.perf_counter()
        result = service.consult_chart(chart, request)
        times.append(time.perf_counter() - started)
        if not _named(result, expected):
            missed.append({"plan": plan, "expected": list(expected)})
    false_alarms = clean = 0
    examples: list[str] = []
    for chart in generate_population(clean_cases * 3, seed=43):
        if clean >= clean_cases:
            break
        active = [c.name for c in chart.conditions if c.clinical_status.value == "active"]
        meds = [m.drug_name for m in chart.medications if m.status.value == "active"]
        allergies = [a.substance for a in chart.allergies]
        if not active or oracle.alerts(active, allergies, meds):
            continue
        result = service.consult_chart(chart, MdtRequest(bundle={"resourceType": "Bundle"}))
        proposed = [c.key.removeprefix("drug:") for c in result.consensus if c.key.startswith("drug:")]
        clean += 1
        warned = [w for w in result.warnings if w.code == "drug_conflict"]
        if warned and not oracle.alerts(active, allergies, [*meds, *proposed]):
            false_alarms += 1
            examples.append(warned[0].message[:120])
    return {
        "planted": len(plans),
        "planted_found": len(plans) - len(missed),
        "planted_recall": round((len(plans) - len(missed)) / max(len(plans), 1), 4),
        "missed": missed[:5],
        "mdt_ms_p50_specialist": round(statistics.median(times) * 1000, 1),
        "clean_cases": clean,
        "clean_false_alarms": false_alarms,
        "false_alarm_examples": examples[:3],
    }


def _agent_responder(body: dict[str, Any]) -> Behaviour:
    tools = [m for m in body["messages"] if m.get("role") == "tool"]
    if not tools:
        return tool_call("search_guidelines", {"query": body["messages"][-1]["content"][:60]})
    first = re.search(r"\[(K\d+)\] ([^。；\n]+)", tools[-1]["content"])
    if not first:
        return answer("证据不足，建议线下讨论。")
    return answer(f"{first.group(2)}。[{first.group(1)}]")


def routing(db: Database, runs: int = 5) -> dict[str, Any]:
    server = FakeOpenAI().start()
    server.responder = _agent_responder
    out: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            general = GeneralModel.from_settings(
                Settings(
                    data_dir=Path(folder), llm_base_url=server.base_url, llm_model="fake", llm_cache=False
                )
            )
            service = MdtService(db, DOCTOR, general)
            template = next(iter(generate_population(1, seed=41)))
            cases = {
                "simple": {"conditions": ["高脂血症"], "drugs": ["阿托伐他汀"]},
                "complex": {
                    "conditions": ["心房颤动", "2型糖尿病", "慢性肾脏病"],
                    "drugs": ["华法林", "二甲双胍", "布洛芬"],
                },
            }
            graph = Graph(db)
            for name, plan in cases.items():
                chart = chart_for(graph, template, plan)
                times, tokens = [], []
                for _ in range(runs):
                    started = time.perf_counter()
                    result = service.consult_chart(chart, MdtRequest(bundle={"resourceType": "Bundle"}))
                    times.append(time.perf_counter() - started)
                    tokens.append(result.tokens)
                out[name] = {
                    "routing": result.routing,
                    "specialties": [v.label for v in result.specialties],
                    "path": result.provenance.path,
                    "ms_p50": round(statistics.median(times) * 1000, 1),
                    "tokens_per_case": int(statistics.median(tokens)),
                    "model_calls": len(server.requests) // runs,
                }
                server.requests.clear()
            general.close()
    finally:
        server.stop()
    return out


def run(every: int = 1, clean_cases: int = 100) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        db = packed_database(Path(folder) / "mdt.db")
        result = conflicts_and_clean(db, every, clean_cases)
        result["routing"] = routing(db)
        db.dispose()
    return result
