from __future__ import annotations

import json
import os
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Annotated

import typer

from medfusion.errors import InvalidInput
from medfusion.interop.fhir import chart_to_bundle
from medfusion.record.models import PatientChart
from medfusion.store.database import get_database
from medfusion.store.patient_service import PatientService, system_principal
from medfusion.synth import generate_population

app = typer.Typer(help="合成数据 synthetic data", no_args_is_help=True)
LOAD_BATCH = 500


class Format(StrEnum):
    jsonl = "jsonl"
    fhir = "fhir"


def chart_line(chart: PatientChart, fmt: Format) -> str:
    payload = chart_to_bundle(chart) if fmt is Format.fhir else chart.model_dump(mode="json")
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def load_into_db(size: int, seed: int, id_prefix: str = "P") -> int:
    service = PatientService(get_database(), system_principal())
    charts = generate_population(size, seed, id_prefix=id_prefix)
    loaded = 0
    while batch := list(islice(charts, LOAD_BATCH)):
        loaded += service.load_many(batch)
    return loaded


@app.command("population")
def population(
    size: Annotated[int, typer.Option(min=1, max=10_000_000, help="人数 residents")] = 100,
    seed: Annotated[int, typer.Option(help="随机种子 seed (same seed + size → same bytes)")] = 0,
    format: Annotated[
        Format, typer.Option("--format", help="jsonl: our record; fhir: one R4 Bundle per line")
    ] = (Format.jsonl),
    out: Annotated[Path | None, typer.Option(help="输出文件；'-' 为标准输出")] = None,
    into_db: Annotated[bool, typer.Option("--into-db", help="写入数据库")] = False,
    id_prefix: Annotated[str, typer.Option(help="患者 id 前缀")] = "P",
) -> None:
    """生成合成人群 Generate a deterministic synthetic population (one JSON object per resident per line)."""
    if out is None and not into_db:
        raise InvalidInput.for_field("--out", "需要 --out 或 --into-db (nothing to do)")
    if out is not None:
        if str(out) == "-":
            for chart in generate_population(size, seed, id_prefix=id_prefix):
                typer.echo(chart_line(chart, format))
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            partial = out.with_name(out.name + ".partial")
            with partial.open("w", encoding="utf-8", newline="\n") as fh:
                for chart in generate_population(size, seed, id_prefix=id_prefix):
                    fh.write(chart_line(chart, format) + "\n")
            os.replace(partial, out)
            typer.echo(f"wrote {size} residents to {out}", err=True)
    if into_db:
        loaded = load_into_db(size, seed, id_prefix)
        typer.echo(f"loaded {loaded} residents into the database", err=True)
