"""``medfusion eval list | run | report`` — the validation center from the shell."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medfusion.errors import InvalidInput
from medfusion.evaluation import report as reports
from medfusion.evaluation import runner
from medfusion.evaluation.rubric import ModelJudge, RuleJudge
from medfusion.evaluation.suites import SUITES
from medfusion.evaluation.targets import (
    AskTarget,
    ConsultTarget,
    DeidTarget,
    FindingsTarget,
    GuardrailTarget,
    ModelTarget,
    RetrievalMcqTarget,
    Target,
    TriageTarget,
)
from medfusion.graph.store import GraphStore
from medfusion.knowledge import packs
from medfusion.knowledge.base import KnowledgeBase
from medfusion.llm import get_general_model
from medfusion.settings import get_settings
from medfusion.store.database import get_database

app = typer.Typer(help="验证中心 Validation center: suites, targets, runs, reports.", no_args_is_help=True)

TARGETS = {
    "llm": "配置的通用大模型（裸模型）the configured general model, bare",
    "ask": "统一问答流水线（护栏+检索+图谱+模型）the ask pipeline",
    "guardrails": "离线安全规则 offline safety rules",
    "retrieval-mcq": "离线检索选择题基线 offline retrieval baseline for MCQ",
    "triage-graph": "离线图谱分科 offline department from the graph",
    "consult": "口袋主任医师鉴别诊断 pocket chief physician differential",
    "deid": "离线去标识化 offline de-identification",
    "findings": "对话症状与阴阳性抽取 symptom findings from dialogue",
}


def make_target(name: str) -> Target:
    settings = get_settings()
    db = get_database()
    packs.ensure_shipped(db)
    general = get_general_model(settings)
    if name == "llm":
        if not general.available:
            raise InvalidInput.for_field(
                "--target", "未配置通用大模型 no model configured (MEDFUSION_LLM_*)", code="no_model"
            )
        return ModelTarget(general)
    if name == "ask":
        return AskTarget(db, general, KnowledgeBase(db))
    if name == "guardrails":
        return GuardrailTarget()
    if name == "retrieval-mcq":
        return RetrievalMcqTarget(KnowledgeBase(db))
    if name == "triage-graph":
        return TriageTarget(GraphStore(db))
    if name == "consult":
        return ConsultTarget(GraphStore(db))
    if name == "deid":
        return DeidTarget()
    if name == "findings":
        return FindingsTarget(GraphStore(db))
    raise InvalidInput.for_field("--target", f"未知目标 unknown target {name}; see `medfusion eval list`")


@app.command("list")
def list_all() -> None:
    """评测集与目标 Suites and targets."""
    typer.echo("suites:")
    for s in SUITES.values():
        state = "" if s.landed else f"  [未上线 not landed: {s.needs}]"
        typer.echo(f"  {s.name:9s} {s.dimension:9s} {', '.join(s.datasets) or '—'} — {s.description}{state}")
    typer.echo("targets:")
    for name, text in TARGETS.items():
        typer.echo(f"  {name:14s} {text}")


@app.command("run")
def run(
    suite: Annotated[str, typer.Option(help="评测集")],
    target: Annotated[str, typer.Option(help="评测目标")],
    out: Annotated[Path, typer.Option(help="输出目录")],
    limit: Annotated[int | None, typer.Option(min=1, help="每个数据集抽样条数")] = None,
    seed: Annotated[int, typer.Option(help="抽样种子")] = 0,
    workers: Annotated[int, typer.Option(min=1, max=32)] = 2,
    dataset: Annotated[list[str] | None, typer.Option(help="用户数据集 JSONL（替代评测集自带数据）")] = None,
    judge: Annotated[str, typer.Option(help="rules | model（评分规则的评审者）")] = "rules",
) -> None:
    """运行评测 Run a suite against a target; exit 0 whenever the run completes, whatever the scores."""
    chosen = make_target(target)
    general = get_general_model(get_settings())
    models = general.describe() if chosen.kind != "specialist" else {}
    shared = get_settings().shared_data.expanduser().resolve()
    if judge not in {"rules", "model"}:
        raise InvalidInput.for_field("--judge", "只能是 rules 或 model")
    if judge == "model" and not general.available:
        raise InvalidInput.for_field("--judge", "未配置通用大模型 no model configured", code="no_model")
    referee = ModelJudge(general) if judge == "model" else RuleJudge()
    result = runner.run_suite(suite, chosen, shared, out, models, limit, seed, workers, dataset, referee)
    written = runner.write(result, out)
    for d in result.datasets:
        shown = d.skipped or ", ".join(f"{k} {v}" for k, v in d.metrics.items() if k not in {"tokens"})
        typer.echo(f"{d.manifest.name}: {shown}")
    typer.echo(f"grade {result.grade or '—'} ({result.dimension}); {written['results']}; {written['report']}")


@app.command("report")
def report(
    runs: Annotated[list[Path], typer.Argument(help="评测结果目录（可多个）")],
    out: Annotated[Path, typer.Option(help="报告输出目录")],
) -> None:
    """并排报告 A side-by-side report of several runs (report.html, report.md)."""
    results = [runner.read(folder) for folder in runs]
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(reports.markdown(results), encoding="utf-8")
    (out / "report.html").write_text(reports.html(results), encoding="utf-8")
    typer.echo(f"{len(results)} runs → {out / 'report.html'}")
