"""``medfusion eval list | run | sweep | report`` — the validation center from the shell."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from medfusion.cli.progress import job_progress
from medfusion.errors import InvalidInput
from medfusion.evaluation import report as reports
from medfusion.evaluation import runner
from medfusion.evaluation.datasets import missing
from medfusion.evaluation.registry import build, check, models_of, targets
from medfusion.evaluation.results import RunResult
from medfusion.evaluation.results import read as read_run
from medfusion.evaluation.rubric import Judge, ModelJudge, RuleJudge
from medfusion.evaluation.suites import SUITES
from medfusion.evaluation.targets import Target
from medfusion.jobs.executors import ExecutorName, worker_threads
from medfusion.llm import get_general_model
from medfusion.settings import get_settings, set_process_default

app = typer.Typer(help="验证中心 Validation center: suites, targets, runs, reports.", no_args_is_help=True)


def _judge(name: str) -> Judge:
    if name not in {"rules", "model"}:
        raise InvalidInput.for_field("--judge", "只能是 rules 或 model")
    general = get_general_model(get_settings())
    if name == "model" and not general.available:
        raise InvalidInput.for_field("--judge", "未配置通用大模型 no model configured", code="no_model")
    return ModelJudge(general) if name == "model" else RuleJudge()


def _share_cores(executor: ExecutorName, workers: int) -> None:
    """Several answering threads in this process: each calling thread gets its own OpenMP team from the
    embedding engine, so give each its share of the cores before the engine loads (measured: ethics × ask,
    2 threads on 2 cores, 5.9 s with a team of 2 per thread, 5.1 s with 1). An explicit setting wins."""
    if executor is ExecutorName.inline and workers > 1:
        for key, value in worker_threads(workers).items():
            set_process_default(key, value)


def _bar(update: Callable[[int, int], None] | None) -> runner.Progress | None:
    """The progress bar follows the dataset being answered."""
    return None if update is None else (lambda dataset, done, total: update(done, total))


@dataclass
class _Runs:
    """What ``run`` and ``sweep`` share: how to answer, judge and show one suite × target run."""

    limit: int | None
    seed: int
    workers: int
    referee: Judge
    executor: ExecutorName
    fresh: bool
    quiet: bool
    shared: Path = field(default_factory=lambda: get_settings().shared_data.expanduser().resolve())
    targets: dict[str, Target] = field(default_factory=dict)  # built once per sweep

    def run(self, suite: str, name: str, out: Path, datasets: list[str] | None = None) -> RunResult:
        if name not in self.targets:
            self.targets[name] = build(name)
        chosen = self.targets[name]
        with job_progress(f"{suite} × {name}", enabled=not self.quiet) as bar:
            result = runner.run_suite(
                suite,
                chosen,
                self.shared,
                out,
                models_of(chosen),
                self.limit,
                self.seed,
                self.workers,
                datasets,
                self.referee,
                executor=self.executor.value,
                fresh=self.fresh,
                progress=_bar(bar),
            )
        runner.write(result, out)
        return result


@app.command("list")
def list_all() -> None:
    """评测集与目标 Suites and targets."""
    typer.echo("suites:")
    for s in SUITES.values():
        state = "" if s.landed else f"  [未上线 not landed: {s.needs}]"
        typer.echo(f"  {s.name:9s} {s.dimension:9s} {', '.join(s.datasets) or '—'} — {s.description}{state}")
    typer.echo("targets:")
    for name, text in targets().items():
        typer.echo(f"  {name:14s} {text}")


@app.command("run")
def run(
    suite: Annotated[str, typer.Option(help="评测集")],
    target: Annotated[str, typer.Option(help="评测目标")],
    out: Annotated[Path, typer.Option(help="输出目录")],
    limit: Annotated[int | None, typer.Option(min=1, help="每个数据集抽样条数")] = None,
    seed: Annotated[int, typer.Option(help="抽样种子")] = 0,
    workers: Annotated[int, typer.Option(min=1, max=64, help="线程（inline）或进程（local/ray）数")] = 2,
    dataset: Annotated[list[str] | None, typer.Option(help="用户数据集 JSONL（替代评测集自带数据）")] = None,
    judge: Annotated[str, typer.Option(help="rules | model（评分规则的评审者）")] = "rules",
    executor: Annotated[ExecutorName, typer.Option(help="inline | local | ray")] = ExecutorName.inline,
    fresh: Annotated[bool, typer.Option("--fresh", help="不用先前运行的结果（缓存）")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="不显示进度条")] = False,
) -> None:
    """运行评测 Run a suite against a target; exit 0 whenever the run completes, whatever the scores."""
    _share_cores(executor, workers)
    runs = _Runs(limit, seed, workers, _judge(judge), executor, fresh, quiet)
    check(target)
    result = runs.run(suite, target, out, dataset)
    for d in result.datasets:
        shown = d.skipped or ", ".join(f"{k} {v}" for k, v in d.metrics.items() if k not in {"tokens"})
        typer.echo(f"{d.manifest.name}: {shown}")
    typer.echo(
        f"grade {result.grade or '—'} ({result.dimension}); {out / 'results.json'}; {out / 'report.html'}"
    )


@app.command("sweep")
def sweep(
    suite: Annotated[list[str], typer.Option(help="评测集（可多个）")],
    target: Annotated[list[str], typer.Option(help="评测目标（可多个）")],
    out: Annotated[Path, typer.Option(help="输出目录：每对一个子目录，外加并排报告")],
    limit: Annotated[int | None, typer.Option(min=1, help="每个数据集抽样条数")] = None,
    seed: Annotated[int, typer.Option(help="抽样种子")] = 0,
    workers: Annotated[int, typer.Option(min=1, max=64, help="线程（inline）或进程（local/ray）数")] = 2,
    judge: Annotated[str, typer.Option(help="rules | model")] = "rules",
    executor: Annotated[ExecutorName, typer.Option(help="inline | local | ray")] = ExecutorName.inline,
    fresh: Annotated[bool, typer.Option("--fresh", help="不用先前运行的结果（缓存）")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="不显示进度条")] = False,
) -> None:
    """批量评测 Every suite × every target (Ray for large sweeps), then one side-by-side report.

    A pair whose target answers none of the suite's items is recorded as skipped, with the reason; a suite
    whose module has not landed stops the sweep before anything runs."""
    _share_cores(executor, workers)
    for name in suite:
        runner.runnable(name)
    for name in target:
        check(name)
    runs = _Runs(limit, seed, workers, _judge(judge), executor, fresh, quiet)
    absent = missing([d for name in suite for d in SUITES[name].datasets], runs.shared)
    if absent:
        raise InvalidInput.for_field(
            "dataset",
            f"数据集不在 {runs.shared} (MEDFUSION_SHARED_DATA): {', '.join(absent)}",
            code="dataset_missing",
        )
    results = []
    for target_name in target:
        for suite_name in suite:
            folder = out / f"{suite_name}--{target_name}"
            result = runs.run(suite_name, target_name, folder)
            results.append(result)
            applies = any(not d.skipped for d in result.datasets)
            shown = f"grade {result.grade or '—'}" if applies else "not applicable (skipped, reason recorded)"
            typer.echo(f"{suite_name} × {target_name}: {shown} → {folder}")
    (out / "report.md").write_text(reports.markdown(results), encoding="utf-8")
    (out / "report.html").write_text(reports.html(results), encoding="utf-8")
    typer.echo(f"{len(results)} runs → {out / 'report.html'}")


@app.command("report")
def report(
    runs: Annotated[list[Path], typer.Argument(help="评测结果目录（可多个）")],
    out: Annotated[Path, typer.Option(help="报告输出目录")],
) -> None:
    """并排报告 A side-by-side report of several runs (report.html, report.md)."""
    results = [read_run(folder) for folder in runs]
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(reports.markdown(results), encoding="utf-8")
    (out / "report.html").write_text(reports.html(results), encoding="utf-8")
    typer.echo(f"{len(results)} runs → {out / 'report.html'}")
