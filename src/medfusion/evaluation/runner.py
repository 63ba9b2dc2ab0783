"""Runs: one suite against one target, reproducibly — seeded sampling, a run manifest (dataset hashes,
target and model ids, configuration, code and grading versions), items answered as chunks of a job (threads,
a process pool or Ray; a crashed run resumes, a repeated run reuses its results), and an item the target
fails on scored as an error while the run goes on."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medfusion import __version__
from medfusion.errors import InvalidInput, MedFusionError
from medfusion.evaluation import grading
from medfusion.evaluation.datasets import load
from medfusion.evaluation.jobs import LIVE, EvaluationChunks
from medfusion.evaluation.report import html, markdown
from medfusion.evaluation.results import RunResult
from medfusion.evaluation.rubric import Judge, RuleJudge
from medfusion.evaluation.scoring import DatasetResult, score
from medfusion.evaluation.suites import SUITES, Suite
from medfusion.evaluation.targets import Target
from medfusion.jobs import run_job
from medfusion.jobs.checkpoint import JobDir, atomic_write_bytes, job_id_for
from medfusion.settings import get_settings

CHUNK = 25  # items per job chunk: the unit of resuming, caching and distribution


class SuiteNotLanded(MedFusionError):
    code = "suite_not_landed"
    status_code = 409


def code_version() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+{commit}" if commit else __version__


Progress = Callable[[str, int, int], None]  # (dataset, items done, items in the dataset)


def _reporting(progress: Progress | None, dataset: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(dataset, done, total)


def runnable(name: str) -> Suite:
    """The suite ``name``, or the typed reason it cannot run (unknown; its module has not landed)."""
    suite = SUITES.get(name)
    if suite is None:
        raise InvalidInput.for_field("--suite", f"未知评测集 unknown suite {name}; see `medfusion eval list`")
    if not suite.landed:
        raise SuiteNotLanded(f"评测集 {name} 需要的模块尚未上线 its module has not landed: {suite.needs}")
    return suite


def run_suite(
    suite_name: str,
    target: Target,
    shared: Path,
    out: Path,
    models: dict[str, str],
    limit: int | None = None,
    seed: int = 0,
    workers: int = 2,
    datasets: list[str] | None = None,
    judge: Judge | None = None,
    executor: str = "inline",
    fresh: bool = False,
    chunk_size: int = CHUNK,
    progress: Progress | None = None,
) -> RunResult:
    """``datasets`` replaces the suite's own (a user's JSONL file graded on the suite's dimension);
    ``judge`` scores responses against rubrics (rules unless a model judge is given). Items are answered
    as a job (:mod:`medfusion.evaluation.jobs`) on ``executor`` — ``inline`` with ``workers`` threads, or
    ``local`` / ``ray`` with ``workers`` processes; ``fresh`` ignores the results of earlier runs;
    ``progress(dataset, done, total)`` hears after every chunk."""
    judge = judge or RuleJudge()
    suite = runnable(suite_name)
    out.mkdir(parents=True, exist_ok=True)
    settings = get_settings()
    started = datetime.now(UTC)
    code = code_version()
    results: list[DatasetResult] = []
    cached = 0
    jobs: list[str] = []
    LIVE[target.name] = target
    try:
        for name in datasets or suite.datasets:
            name = str(Path(name).resolve()) if name.endswith(".jsonl") else name
            dataset = load(name, shared, limit, seed)
            tasks = {i.task for i in dataset.items}
            if not tasks & target.tasks:
                results.append(
                    DatasetResult(
                        manifest=dataset.manifest,
                        evaluated=0,
                        skipped=f"target {target.name} does not answer {sorted(tasks)} items",
                    )
                )
                continue
            items = [i for i in dataset.items if i.task in target.tasks]
            params: dict[str, Any] = {
                "dataset": name,
                "content_hash": dataset.manifest.content_hash,
                "shared": str(shared),
                "tasks": sorted(target.tasks),
                "target": target.name,
                "models": models,
                "seed": seed,
                "limit": limit,
                "code": code,
                "items": len(items),
                "chunk_size": chunk_size,
                "threads": workers if executor == "inline" else 1,
            }
            kind = EvaluationChunks()
            job_id = job_id_for(kind.name, kind.identity(params))
            job_dir = JobDir(settings.resolved_data_dir, job_id).path
            if fresh:
                shutil.rmtree(job_dir, ignore_errors=True)
            chunks = kind.chunks(params)
            cached += sum(p.error is None for p in kind.answered(job_dir, chunks))
            run_job(
                kind,
                params,
                data_dir=settings.resolved_data_dir,
                database_url=settings.resolved_database_url,
                executor=executor,
                workers=workers,
                job_id=job_id,
                progress=_reporting(progress, dataset.manifest.name),
            )
            jobs.append(job_id)
            predictions = kind.answered(job_dir, chunks)
            log = out / f"{dataset.manifest.name}.items.jsonl"
            log.write_text("".join(p.model_dump_json() + "\n" for p in predictions), encoding="utf-8")
            results.append(score(suite.dimension, dataset.manifest, items, predictions, judge))
    finally:
        if LIVE.get(target.name) is target:
            del LIVE[target.name]
    letters = [g for r in results for g in r.grades.values()]
    return RunResult(
        suite=suite.name,
        dimension=suite.dimension,
        target=target.name,
        target_kind=target.kind,
        models=models,
        seed=seed,
        limit=limit,
        code_version=code,
        judge=judge.name,
        grading_version=grading.thresholds()["version"],
        started_at=started,
        finished_at=datetime.now(UTC),
        datasets=results,
        grade=grading.worst(letters),
        cached_items=cached,
        executor=executor,
        jobs=jobs,
    )


def write(result: RunResult, out: Path) -> dict[str, Any]:
    # each file replaced whole: the API and the web page may be reading a run while it is written
    atomic_write_bytes(out / "report.md", markdown([result]).encode("utf-8"))
    atomic_write_bytes(out / "report.html", html([result]).encode("utf-8"))
    atomic_write_bytes(out / "results.json", result.model_dump_json(indent=1).encode("utf-8"))
    return {"results": str(out / "results.json"), "report": str(out / "report.html")}
