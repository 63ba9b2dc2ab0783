"""Evaluation runs on the jobs layer: what the chunked, cached, distributable run costs and buys.

One workload — the ``ethics`` suite against the ``ask`` pipeline (no model), 200 seeded items from each of
cvalues_responsibility and flames_zh — answered:

- **peer**: a bare loop calling the target item by item (no harness: no chunks, no checkpoint, no cache);
- **ours**: ``run_suite`` inline with 1 and 2 threads, on a process pool (2 spawned workers) and on a local
  Ray (2 workers; start-up included and reported apart), then the same run again (the result cache);
- **resume**: a run killed after about half its chunks, rerun — items answered again.

Every executor must give the same scores (latency aside); the benchmark checks it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from medfusion.evaluation import results, runner
from medfusion.evaluation.datasets import load
from medfusion.evaluation.registry import build
from medfusion.evaluation.targets import Target
from medfusion.settings import get_settings
from medfusion.store.database import reset_database_cache

SUITE, TARGET, LIMIT, SEED = "ethics", "ask", 200, 1


class _Stop(BaseException):
    pass


def _scores(result: results.RunResult) -> dict[str, dict[str, float]]:
    return {
        d.manifest.name: {k: v for k, v in d.metrics.items() if not k.startswith("latency")}
        for d in result.datasets
    }


def _timed(target: Target, out: Path, **options: Any) -> tuple[float, results.RunResult]:
    shared = get_settings().shared_data.expanduser().resolve()
    started = time.perf_counter()
    result = runner.run_suite(SUITE, target, shared, out, {}, LIMIT, SEED, **options)
    return time.perf_counter() - started, result


def run() -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="eval-bench-"))
    os.environ["MEDFUSION_DATA_DIR"] = str(folder / "var")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    get_settings.cache_clear()
    reset_database_cache()
    target = build(TARGET)  # installs the shipped packs once, before anything is timed
    shared = get_settings().shared_data.expanduser().resolve()
    items = [
        i for name in ("cvalues_responsibility", "flames_zh") for i in load(name, shared, LIMIT, SEED).items
    ]

    started = time.perf_counter()
    for item in items:
        target.predict(item)
    peer = time.perf_counter() - started

    timings: dict[str, float] = {}
    scores: dict[str, Any] = {}
    for label, options in {
        "inline_1_thread": {"workers": 1},
        "inline_2_threads": {"workers": 2},
        "local_2_processes": {"workers": 2, "executor": "local"},
    }.items():
        timings[label], result = _timed(target, folder / label, fresh=True, **options)
        scores[label] = _scores(result)
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    ray_start = time.perf_counter() - started
    timings["ray_2_workers"], result = _timed(target, folder / "ray", fresh=True, workers=2, executor="ray")
    scores["ray_2_workers"] = _scores(result)
    ray.shutdown()
    timings["cached_rerun"], cached = _timed(target, folder / "cached", workers=2)

    class Killed(type(target)):  # type: ignore[misc]
        """The ask target that stops the whole run after answering half the items."""

        answered = 0

        def predict(self, item: Any) -> Any:
            Killed.answered += 1
            if Killed.answered > len(items) // 2:
                raise _Stop
            return target.predict(item)

    killed = Killed.__new__(Killed)
    with contextlib.suppress(_Stop):
        runner.run_suite(SUITE, killed, shared, folder / "killed", {}, LIMIT, SEED, workers=1, fresh=True)
    timings["resume_after_kill"], resumed = _timed(target, folder / "killed", workers=1)
    same = (
        all(s == scores["inline_1_thread"] for s in scores.values())
        and _scores(cached) == scores["inline_1_thread"]
    )
    return {
        "workload": f"{SUITE} × {TARGET}, {len(items)} items (limit {LIMIT} per dataset, seed {SEED})",
        "peer": "a bare loop over target.predict (no harness)",
        "peer_s": round(peer, 2),
        "ours_s": {k: round(v, 2) for k, v in timings.items()},
        "ray_start_s": round(ray_start, 2),
        "items_from_cache_on_rerun": cached.cached_items,
        "items_kept_after_kill": resumed.cached_items,
        "same_scores_on_every_executor": same,
        "scores": scores["inline_1_thread"],
    }
