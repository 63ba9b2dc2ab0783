from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from medfusion.cli.population_jobs import PopulationToDatabase, PopulationToFile
from medfusion.cli.progress import run_cli_job
from medfusion.errors import InvalidInput
from medfusion.jobs.executors import ExecutorName
from medfusion.jobs.model import JobResult
from medfusion.synth.lines import resident_line

app = typer.Typer(help="合成数据 synthetic data", no_args_is_help=True)


class Format(StrEnum):
    jsonl = "jsonl"
    fhir = "fhir"


class FhirProfile(StrEnum):
    medfusion = "medfusion"  # our coding: ICD-10 国家临床版2.0, ICD-9-CM-3, ATC, LOINC
    synthea = "synthea"  # Synthea-style: SNOMED CT diagnoses and procedures, LOINC, transaction Bundles


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
    params = {"size": size, "seed": seed, "id_prefix": id_prefix, "chunk_size": chunk_size}
    result: JobResult = run_cli_job(
        PopulationToDatabase(),
        params,
        "载入数据库 loading",
        executor=executor,
        workers=workers,
        show=show_progress,
    )
    return result


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
    profile: Annotated[
        FhirProfile, typer.Option(help="--format fhir 的编码：medfusion (ICD-10) | synthea (SNOMED CT/LOINC)")
    ] = FhirProfile.medfusion,
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
    if profile is FhirProfile.synthea and format is not Format.fhir:
        raise InvalidInput.for_field("--profile", "synthea 编码只用于 --format fhir (a FHIR profile)")
    fmt = "fhir-synthea" if profile is FhirProfile.synthea else format.value
    if out is not None and str(out) == "-":
        for index in range(size):
            typer.echo(resident_line(seed, index, fmt, id_prefix, plant_pii))
    elif out is not None:
        params = {
            "size": size,
            "seed": seed,
            "format": fmt,
            "id_prefix": id_prefix,
            "plant_pii": plant_pii,
            "chunk_size": chunk_size,
            "out": str(out.resolve()),
        }
        result = run_cli_job(
            PopulationToFile(), params, "生成 generating", executor=executor, workers=workers, show=not quiet
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
