"""``make bench``: measured, side by side with a named peer where one exists, written to benchmarks/results/.

Each benchmark reports the median of several repeats on this machine, in the same run as its peer.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.fusion_latency import bench_fusion_latency

RESULTS = Path(__file__).with_name("results")


def _median_seconds(fn: Callable[[], object], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "date": datetime.now(UTC).date().isoformat(),
    }


def bench_id_numbers() -> dict[str, Any]:
    """GB 11643 validation: ours vs python-stdnum's ``stdnum.cn.ric`` on the same 20,000 numbers."""
    from stdnum.cn import ric

    from medfusion.record.id_card import parse_id_number
    from medfusion.synth import generate_population

    numbers = [str(c.patient.id_number) for c in generate_population(500, seed=1)] * 40
    ours = _median_seconds(lambda: [parse_id_number(n) for n in numbers])
    peer = _median_seconds(lambda: [ric.is_valid(n) for n in numbers])
    # stdnum also requires the address code to have existed in the birth year; numbers issued from 1984 to
    # people born earlier legitimately carry 1982+ codes, so it rejects some valid numbers — counted here.
    agree = sum(ric.is_valid(n) for n in numbers[:500]) / 500
    return {
        "items": len(numbers),
        "ours_per_s": len(numbers) / ours,
        "peer": "python-stdnum cn.ric.is_valid",
        "peer_per_s": len(numbers) / peer,
        "peer_accepts_share_of_our_valid_numbers": agree,
    }


def bench_fhir() -> dict[str, Any]:
    """FHIR Bundles: our import (R4B validation + mapping + loss check) vs fhir.resources validation alone."""
    from fhir.resources.R4B.bundle import Bundle

    from medfusion.interop.fhir import bundle_to_charts, chart_to_bundle
    from medfusion.synth import generate_population

    charts = list(generate_population(100, seed=3))
    bundles = [json.loads(json.dumps(chart_to_bundle(c))) for c in charts]
    resources = sum(len(b["entry"]) for b in bundles)
    export = _median_seconds(lambda: [chart_to_bundle(c) for c in charts], 3)
    ours = _median_seconds(lambda: [bundle_to_charts(b) for b in bundles], 3)
    peer = _median_seconds(lambda: [Bundle.model_validate(b) for b in bundles], 3)
    return {
        "bundles": len(bundles),
        "resources": resources,
        "export_resources_per_s": resources / export,
        "import_resources_per_s": resources / ours,
        "peer": "fhir.resources R4B Bundle.model_validate",
        "peer_resources_per_s": resources / peer,
    }


def bench_synth() -> dict[str, Any]:
    from medfusion.synth import generate_population

    n = 2000
    seconds = _median_seconds(lambda: list(generate_population(n, seed=9)), 3)
    return {"residents": n, "residents_per_s": n / seconds}


def _audit_rates(url: str) -> dict[str, float]:
    from medfusion.store import audit
    from medfusion.store.database import Database

    db = Database(url)
    db.upgrade()
    actor = audit.Actor("bench", "doctor")
    n = 2000
    started = time.perf_counter()
    for i in range(n):
        with db.session() as session:
            audit.record(session, actor, "patient.read", patient_id=f"P{i}")
    append = n / (time.perf_counter() - started)
    with db.session() as session:
        verify_s = _median_seconds(lambda: audit.verify(session), 3)
    db.dispose()
    return {"appends_per_s_one_tx_each": append, "verify_entries_per_s": n / verify_s}


def bench_audit() -> dict[str, Any]:
    """Audit append (one transaction per entry, as the API does) and chain verification, per backend."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite"] = _audit_rates(f"sqlite:///{tmp}/bench.db")
    pg = os.environ.get("MEDFUSION_TEST_PG_URL")
    if pg:
        from benchmarks import population

        url, name = population.create_pg(pg)
        try:
            out["postgresql"] = _audit_rates(url)
        finally:
            population.drop_pg(pg, name)
    return out


def bench_scale() -> dict[str, Any]:
    """Population to JSONL at 10k/100k/430k (local, 2 workers), local vs Ray at 100k, database load at
    10k/100k on SQLite and PostgreSQL, then the API under 50 concurrent clients on the 10k databases."""
    import shutil

    from benchmarks import api_load, population

    sizes = [int(s) for s in os.environ.get("MEDFUSION_BENCH_SIZES", "10000,100000,430000").split(",")]
    db_sizes = [int(s) for s in os.environ.get("MEDFUSION_BENCH_DB_SIZES", "10000,100000").split(",")]
    load_seconds = float(os.environ.get("MEDFUSION_BENCH_LOAD_SECONDS", "60"))
    parts = os.environ.get("MEDFUSION_BENCH_PARTS", "jsonl,executors,database,api").split(",")
    workdir = population.workspace()
    out: dict[str, Any] = {}
    kept: dict[str, str] = {}
    try:
        if "jsonl" in parts:
            out["jsonl"] = population.jsonl(sizes, [("local", 2)], workdir)
        if "executors" in parts:
            compare = sorted(set(sizes))[min(1, len(sizes) - 1)]
            out["executors"] = population.jsonl([compare], [("inline", 1), ("local", 2), ("ray", 2)], workdir)
        if "database" in parts or "api" in parts:
            loads, kept = population.database_load(
                db_sizes if "database" in parts else [min(db_sizes)], workdir, keep=min(db_sizes)
            )
            if "database" in parts:
                out["database_load"] = loads
        if "api" in parts:
            out["api_load"] = api_load.run(kept, clients=50, seconds=load_seconds)
        pg = os.environ.get("MEDFUSION_TEST_PG_URL")
        for backend, url in kept.items():
            if backend == "postgresql" and pg:
                population.drop_pg(pg, url.rpartition("/")[2])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def bench_api_floor() -> dict[str, Any]:
    """Our chart read and patient search vs a bare FastAPI floor on the same rows (50 clients, one SQLite
    process), then 2 and 4 workers on PostgreSQL, the audit chain checked after each run (issue 15 part 7).
    ``MEDFUSION_BENCH_API_SQLITE_URL`` / ``MEDFUSION_BENCH_API_PG_URL`` reuse loaded databases; otherwise
    10,000 synthetic residents are loaded into fresh ones."""
    import shutil

    from benchmarks import api_floor, population

    seconds = float(os.environ.get("MEDFUSION_BENCH_LOAD_SECONDS", "30"))
    sqlite_url = os.environ.get("MEDFUSION_BENCH_API_SQLITE_URL")
    pg_url = os.environ.get("MEDFUSION_BENCH_API_PG_URL")
    workdir = population.workspace()
    made: dict[str, str] = {}
    try:
        if not sqlite_url:
            _, made = population.database_load([10000], workdir, keep=10000)
            sqlite_url, pg_url = made["sqlite"], pg_url or made.get("postgresql")
        return api_floor.run(sqlite_url, pg_url, seconds=seconds)
    finally:
        pg = os.environ.get("MEDFUSION_TEST_PG_URL")
        if pg and "postgresql" in made:
            population.drop_pg(pg, made["postgresql"].rpartition("/")[2])
        shutil.rmtree(workdir, ignore_errors=True)


def bench_deid() -> dict[str, Any]:
    from benchmarks import deid

    return deid.run(int(os.environ.get("MEDFUSION_BENCH_DEID_RESIDENTS", "400")))


def bench_retrieval() -> dict[str, Any]:
    from benchmarks import retrieval

    return retrieval.run()


def bench_own_documents() -> dict[str, Any]:
    from benchmarks import own_documents

    return own_documents.run()


def bench_graph() -> dict[str, Any]:
    from benchmarks import graph_eval

    return graph_eval.run(int(os.environ.get("MEDFUSION_BENCH_GRAPH_PLANS", "1000")))


def bench_graph_backends() -> dict[str, Any]:
    from benchmarks import graph_backends

    return graph_backends.run()


def bench_rerank() -> dict[str, Any]:
    from benchmarks import rerank

    return rerank.run()


def bench_embedding() -> dict[str, Any]:
    from benchmarks import embedding

    return embedding.run(int(os.environ.get("MEDFUSION_BENCH_EMBED_PASSAGES", "10000")))


def bench_search_scale() -> dict[str, Any]:
    from benchmarks import search_scale

    return search_scale.run()


def bench_grounding() -> dict[str, Any]:
    from benchmarks import grounding_eval

    return grounding_eval.run(int(os.environ.get("MEDFUSION_BENCH_GROUNDING_DISEASES", "105")))


def bench_llm_client() -> dict[str, Any]:
    from benchmarks import llm_client

    return llm_client.run(int(os.environ.get("MEDFUSION_BENCH_LLM_CALLS", "300")))


def bench_llm_faults() -> dict[str, Any]:
    from benchmarks import llm_faults

    return llm_faults.run(int(os.environ.get("MEDFUSION_BENCH_FAULT_RUNS", "300")))


def bench_feedback_replay() -> dict[str, Any]:
    from benchmarks import feedback_replay

    return feedback_replay.run()


def bench_consult_dxy() -> dict[str, Any]:
    from benchmarks import consult_dxy

    return consult_dxy.run()


def bench_disease_rankers() -> dict[str, Any]:
    from benchmarks import disease_rankers

    return disease_rankers.run()


def bench_mdt() -> dict[str, Any]:
    from benchmarks import mdt_eval

    return mdt_eval.run()


def bench_eval_runs() -> dict[str, Any]:
    from benchmarks import eval_runs

    return eval_runs.run()


def bench_events() -> dict[str, Any]:
    """Record events: outbox cost per write (SQLite, PostgreSQL), dispatch in-process vs NATS JetStream."""
    from benchmarks import events

    return events.run()


BENCHMARKS: dict[str, Callable[[], dict[str, Any]]] = {
    "eval_runs": bench_eval_runs,
    "events": bench_events,
    "graph": bench_graph,
    "grounding": bench_grounding,
    "llm_client": bench_llm_client,
    "llm_faults": bench_llm_faults,
    "feedback_replay": bench_feedback_replay,
    "consult_dxy": bench_consult_dxy,
    "disease_rankers": bench_disease_rankers,
    "mdt": bench_mdt,
    "fusion_latency": bench_fusion_latency,  # before/after the fusion pipeline refactor (d10bf74)
    "graph_backends": bench_graph_backends,
    "embedding": bench_embedding,
    "search_scale": bench_search_scale,
    "deid": bench_deid,
    "retrieval": bench_retrieval,
    "rerank": bench_rerank,  # reads the retrieval benchmark's knowledge base (with its vectors)
    "own_documents": bench_own_documents,  # the user's documents among the shipped packs (issue 15)
    "id_numbers": bench_id_numbers,
    "fhir": bench_fhir,
    "synth": bench_synth,
    "audit": bench_audit,
    "scale": bench_scale,
    "api_floor": bench_api_floor,  # ours vs a bare FastAPI floor; 2 and 4 workers on PostgreSQL (issue 15)
}


def main() -> None:
    """``python -m benchmarks.run [name ...]`` — all benchmarks by default (``scale`` takes ~20 minutes)."""
    import sys

    RESULTS.mkdir(exist_ok=True)
    chosen = sys.argv[1:] or list(BENCHMARKS)
    for name in chosen:
        result = {"benchmark": name, "machine": _machine(), "result": BENCHMARKS[name]()}
        previous = RESULTS / f"{name}.json"
        if (
            name == "scale" and previous.exists()
        ):  # a partial run (MEDFUSION_BENCH_PARTS) keeps the other parts
            result["result"] = {**json.loads(previous.read_text()).get("result", {}), **result["result"]}
        (RESULTS / f"{name}.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
        print(f"{name:12s} {json.dumps(result['result'], ensure_ascii=False)}", flush=True)


if __name__ == "__main__":
    main()
