from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from medfusion.cli.progress import job_progress
from medfusion.errors import InvalidInput
from medfusion.jobs import run_job
from medfusion.jobs.executors import ExecutorName
from medfusion.jobs.model import JobResult
from medfusion.settings import get_settings
from medfusion.store.database import get_database
from medfusion.synth.jobs import PopulationToDatabase, PopulationToFile, resident_line

app = typer.Typer(help="合成数据 synthetic data", no_args_is_help=True)


class Format(StrEnum):
    jsonl = "jsonl"
    fhir = "fhir"


def load_into_db(
    size: int,
    seed: int,
    id_prefix: str = "P",
    *,
    executor: ExecutorName = ExecutorName.inline,
    workers: int | None = None,
    chunk_size: int = 500,
    show_progress: bool = False,
) -> JobResult:
    settings = get_settings()
    db = get_database(settings)  # migrate before workers start
    params = {"size": size, "seed": seed, "id_prefix": id_prefix, "chunk_size": chunk_size}
    with job_progress("载入数据库 loading", enabled=show_progress) as progress:
        return run_job(
            PopulationToDatabase(),
            params,
            data_dir=settings.resolved_data_dir,
            database_url=db.url,
            executor=executor,
            workers=workers,
            progress=progress,
        )


@app.command("population")
def population(
    size: Annotated[int, typer.Option(min=1, max=10_000_000, help="人数 residents")] = 100,
    seed: Annotated[int, typer.Option(help="随机种子 seed (same seed + size → same bytes)")] = 0,
    format: Annotated[
        Format, typer.Option("--format", help="jsonl: our record; fhir: one R4 Bundle per line")
    ] = (Format.jsonl),
    out: Annotated[Path | None, typer.Option(help="输出文件；'-' 为标准输出")] = None,
    into_db: Annotated[bool, typer.Option("--into-db", help="写入数据库")] = False,
    plant_pii: Annotated[
        bool, typer.Option("--plant-pii", help="在病历文本中植入标注好的身份信息与干扰项 (jsonl: pii_spans)")
    ] = False,
    id_prefix: Annotated[str, typer.Option(help="患者 id 前缀")] = "P",
    executor: Annotated[
        ExecutorName, typer.Option(help="inline | local (进程池) | ray")
    ] = ExecutorName.local,
    workers: Annotated[int | None, typer.Option(min=1, help="并行进程数，默认为CPU数")] = None,
    chunk_size: Annotated[int, typer.Option(min=1, max=100_000, help="每个检查点的人数")] = 1000,
    quiet: Annotated[bool, typer.Option("--quiet", help="不显示进度条")] = False,
) -> None:
    """生成合成人群 Generate a deterministic synthetic population (one JSON object per resident per line).

    File and database output run as resumable jobs: interrupt them (even kill -9) and run the same command
    again to continue where they stopped.
    """
    if out is None and not into_db:
        raise InvalidInput.for_field("--out", "需要 --out 或 --into-db (nothing to do)")
    if plant_pii and format is Format.fhir:
        raise InvalidInput.for_field(
            "--plant-pii", "标注只写入 jsonl (gold spans are written with --format jsonl)"
        )
    if plant_pii and into_db:
        raise InvalidInput.for_field(
            "--plant-pii", "植入的身份信息不写入数据库 (planted PII is for files only)"
        )
    settings = get_settings()
    if out is not None and str(out) == "-":
        for index in range(size):
            typer.echo(resident_line(seed, index, format.value, id_prefix, plant_pii))
    elif out is not None:
        params = {
            "size": size,
            "seed": seed,
            "format": format.value,
            "id_prefix": id_prefix,
            "plant_pii": plant_pii,
            "chunk_size": chunk_size,
            "out": str(out.resolve()),
        }
        with job_progress("生成 generating", enabled=not quiet) as progress:
            result = run_job(
                PopulationToFile(),
                params,
                data_dir=settings.resolved_data_dir,
                database_url=settings.resolved_database_url,
                executor=executor,
                workers=workers,
                progress=progress,
            )
        typer.echo(
            f"wrote {size} residents to {out} ({result.chunks_resumed} of {result.chunks} chunks resumed, "
            f"{result.seconds:.1f}s, {result.executor}×{result.workers})",
            err=True,
        )
    if into_db:
        result = load_into_db(
            size,
            seed,
            id_prefix,
            executor=executor,
            workers=workers,
            chunk_size=min(chunk_size, 500),
            show_progress=not quiet,
        )
        typer.echo(
            f"loaded {size} residents into the database ({result.chunks_resumed} of {result.chunks} chunks "
            f"resumed, {result.seconds:.1f}s)",
            err=True,
        )
