from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from medfusion.errors import InvalidInput
from medfusion.graph import importers
from medfusion.graph.model import Relation
from medfusion.graph.store import GraphStore
from medfusion.settings import get_settings
from medfusion.store.database import get_database

app = typer.Typer(help="知识图谱 knowledge graph", no_args_is_help=True)
query_app = typer.Typer(help="图谱查询 queries", no_args_is_help=True)
app.add_typer(query_app, name="query")


@app.command("import")
def import_(
    fmt: Annotated[str, typer.Argument(help="kg39 | csv")],
    path: Annotated[
        Path | None, typer.Argument(help="kg39: the dataset folder; csv: the triple file")
    ] = None,
) -> None:
    """导入三元组 Import triples (idempotent): kg39_disease from MEDFUSION_SHARED_DATA, or a triple CSV."""
    store = GraphStore(get_database())
    if fmt == "kg39":
        folder = path or get_settings().shared_data / "kg39_disease"
        counts = store.add(importers.kg39(folder))
    elif fmt == "csv":
        if path is None or not path.is_file():
            raise InvalidInput.for_field("path", "需要三元组 CSV 文件 a triple CSV file is required")
        counts = store.add(importers.triple_csv(path))
    else:
        raise InvalidInput.for_field("format", f"未知格式 unknown format {fmt!r} (kg39 | csv)")
    typer.echo(json.dumps(counts.model_dump(), ensure_ascii=False))


def _names(value: str) -> list[str]:
    return [v.strip() for v in value.replace("，", ",").split(",") if v.strip()]


@query_app.command("neighbours")
def neighbours(
    name: Annotated[str, typer.Argument()],
    relation: Annotated[Relation | None, typer.Option()] = None,
) -> None:
    """实体的邻居 An entity's typed neighbours, each with its source."""
    rows = GraphStore(get_database()).neighbours(name, relation)
    typer.echo(json.dumps([r.model_dump() for r in rows], ensure_ascii=False, indent=1))


@query_app.command("diagnose")
def diagnose(
    symptoms: Annotated[str, typer.Option(help="逗号分隔的症状 comma-separated symptoms")],
    k: Annotated[int, typer.Option(min=1, max=50)] = 10,
) -> None:
    """按症状排序疾病 Diseases ranked by observed symptoms, with supporting and unobserved symptoms."""
    rows = GraphStore(get_database()).diseases_for_symptoms(_names(symptoms), k=k)
    typer.echo(json.dumps([r.model_dump() for r in rows], ensure_ascii=False, indent=1))


@query_app.command("department")
def department(names: Annotated[str, typer.Option("--names", help="疾病或症状，逗号分隔")]) -> None:
    """就诊科室 Departments for diseases or symptoms, by votes."""
    rows = GraphStore(get_database()).departments_for(_names(names))
    typer.echo(json.dumps([{"department": d, "votes": v} for d, v in rows], ensure_ascii=False, indent=1))
