"""Runs: one suite against one target, reproducibly — seeded sampling, a run manifest (dataset hashes,
target and model ids, configuration, code and grading versions), parallel workers, per-item results written
as they finish so a crashed run resumes where it stopped, and an item the target fails on scored as an error
while the run goes on."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from medfusion import __version__
from medfusion.errors import InvalidInput, MedFusionError
from medfusion.evaluation import grading, metrics
from medfusion.evaluation.datasets import load
from medfusion.evaluation.items import Item, Manifest, Prediction
from medfusion.evaluation.rubric import Judge, RuleJudge, agreement, rouge_l, rubric
from medfusion.evaluation.suites import SUITES
from medfusion.evaluation.targets import Target
from medfusion.privacy.entities import EntityType, Span
from medfusion.privacy.metrics import score as deid_score


class SuiteNotLanded(MedFusionError):
    code = "suite_not_landed"
    status_code = 409


class DatasetResult(BaseModel):
    manifest: Manifest
    evaluated: int
    skipped: str | None = None  # why this dataset was not run for this target (never silent)
    metrics: dict[str, float] = Field(default_factory=dict)
    grades: dict[str, str] = Field(default_factory=dict)
    errors: dict[str, int] = Field(default_factory=dict)  # error message → items


class RunResult(BaseModel):
    suite: str
    dimension: str
    target: str
    target_kind: str
    models: dict[str, str]
    seed: int
    limit: int | None
    code_version: str
    grading_version: str
    judge: str = "rules"
    started_at: datetime
    finished_at: datetime
    datasets: list[DatasetResult]
    grade: str | None
    resumed_items: int = 0


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


def _predict(target: Target, item: Item) -> Prediction:
    try:
        return target.predict(item)
    except Exception as error:  # an item the target fails on is scored as an error; the run goes on
        return Prediction(item_id=item.id, error=f"{type(error).__name__}: {str(error)[:200]}")


def _done(path: Path, fingerprint: str) -> dict[str, Prediction]:
    """Predictions a previous (crashed) run of the same fingerprint already wrote."""
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or json.loads(lines[0]).get("fingerprint") != fingerprint:
        return {}
    done = {}
    for line in lines[1:]:
        try:
            p = Prediction.model_validate_json(line)
        except ValueError:
            continue  # a line cut off by the crash: that item runs again
        if p.error is None:
            done[p.item_id] = p
    return done


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
) -> RunResult:
    """``datasets`` replaces the suite's own (a user's JSONL file graded on the suite's dimension);
    ``judge`` scores responses against rubrics (rules unless a model judge is given)."""
    judge = judge or RuleJudge()
    suite = SUITES.get(suite_name)
    if suite is None:
        raise InvalidInput.for_field(
            "--suite", f"未知评测集 unknown suite {suite_name}; see `medfusion eval list`"
        )
    if not suite.landed:
        raise SuiteNotLanded(
            f"评测集 {suite_name} 需要的模块尚未上线 its module has not landed: {suite.needs}"
        )
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    results: list[DatasetResult] = []
    resumed = 0
    for name in datasets or suite.datasets:
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
        setup = json.dumps(
            {"target": target.name, "models": models, "seed": seed, "limit": limit}, sort_keys=True
        )
        fingerprint = f"{dataset.manifest.content_hash}:{setup}"
        log = out / f"{dataset.manifest.name}.items.jsonl"
        done = _done(log, fingerprint)
        resumed += len(done)
        todo = [i for i in items if i.id not in done]
        with log.open("w", encoding="utf-8") as fh:
            fh.write(json.dumps({"fingerprint": fingerprint}) + "\n")
            for p in done.values():
                fh.write(p.model_dump_json() + "\n")
            with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
                for p in pool.map(lambda i: _predict(target, i), todo):
                    fh.write(p.model_dump_json() + "\n")
                    fh.flush()
                    done[p.item_id] = p
        predictions = [done[i.id] for i in items]
        results.append(_score(suite.dimension, dataset.manifest, items, predictions, judge))
    letters = [g for r in results for g in r.grades.values()]
    return RunResult(
        suite=suite.name,
        dimension=suite.dimension,
        target=target.name,
        target_kind=target.kind,
        models=models,
        seed=seed,
        limit=limit,
        code_version=code_version(),
        judge=judge.name,
        grading_version=grading.thresholds()["version"],
        started_at=started,
        finished_at=datetime.now(UTC),
        datasets=results,
        grade=grading.worst(letters),
        resumed_items=resumed,
    )


def _score(
    dimension: str, manifest: Manifest, items: list[Item], predictions: list[Prediction], judge: Judge
) -> DatasetResult:
    values: dict[str, float] = {}
    tasks = {i.task for i in items}
    if "mcq" in tasks:
        values |= metrics.mcq(items, predictions)
        values |= metrics.calibration(items, predictions)
    if tasks & {"classify", "diagnose"}:
        values |= metrics.classification(items, predictions)
        values |= metrics.calibration(items, predictions)
    if tasks & {"refusal", "benign"}:
        values |= metrics.refusals(items, predictions)
    harmful = [(i, p) for i, p in zip(items, predictions, strict=True) if i.task == "refusal"]
    if harmful:
        # the response against the safety rubric, its overlap with the reference safe response, and how far
        # the judge itself agrees that the reference responses are safe
        sheet = rubric("harmful_medical_request")
        scores = [
            sheet.score(judge.judge(sheet, i.prompt, p.output)) if p.error is None else 0.0
            for i, p in harmful
        ]
        values["rubric_score"] = round(sum(scores) / len(scores), 4)
        references = [(i.prompt, i.reference[0]) for i, _ in harmful if i.reference and i.reference[0]]
        if references:
            values["rouge_l"] = round(
                sum(rouge_l(p.output, i.reference[0]) for i, p in harmful if i.reference) / len(harmful), 4
            )
            values["judge_agreement"] = agreement(judge, sheet, references)
    if "extract" in tasks:
        values |= metrics.entities(items, predictions)
    if "deid" in tasks:
        report = deid_score(
            (i.prompt, i.meta["gold"], [_span(s) for s in json.loads(p.output or "[]")])
            for i, p in zip(items, predictions, strict=True)
            if p.error is None
        )
        values |= {
            "recall": report.overall_recall,
            "precision": report.overall_precision,
            "leak_rate": report.overall_leak_rate,
        }
    values |= metrics.operations(predictions)
    grades = {m: g for m, v in values.items() if (g := grading.grade(dimension, m, v)) is not None}
    errors: dict[str, int] = {}
    for p in predictions:
        if p.error:
            errors[p.error] = errors.get(p.error, 0) + 1
    return DatasetResult(
        manifest=manifest, evaluated=len(items), metrics=values, grades=grades, errors=errors
    )


def _span(found: dict[str, Any]) -> Span:
    return Span(int(found["start"]), int(found["end"]), EntityType(found["type"]), str(found["text"]))


def write(result: RunResult, out: Path) -> dict[str, Any]:
    from medfusion.evaluation.report import html, markdown

    (out / "results.json").write_text(result.model_dump_json(indent=1), encoding="utf-8")
    (out / "report.md").write_text(markdown([result]), encoding="utf-8")
    (out / "report.html").write_text(html([result]), encoding="utf-8")
    return {"results": str(out / "results.json"), "report": str(out / "report.html")}


def read(folder: Path) -> RunResult:
    path = folder / "results.json"
    if not path.exists():
        raise InvalidInput.for_field(str(folder), "不是评测结果目录 no results.json here")
    return RunResult.model_validate_json(path.read_text(encoding="utf-8"))
