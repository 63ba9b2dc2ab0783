from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from medfusion.errors import InvalidInput
from medfusion.graph import Graph, importers
from medfusion.graph.conflicts import ConflictChecker
from medfusion.graph.model import Relation, split_terms
from medfusion.graph.store import ImportCounts
from medfusion.knowledge import packs
from medfusion.settings import get_settings
from medfusion.store.database import get_database

app = typer.Typer(help="知识图谱 knowledge graph", no_args_is_help=True)
query_app = typer.Typer(help="图谱查询 queries", no_args_is_help=True)
app.add_typer(query_app, name="query")

# format → (default dataset folder under MEDFUSION_SHARED_DATA or None for a file, loader)
_TRIPLES: dict[str, tuple[str | None, Callable[[Path], Iterator[Any]]]] = {
    "kg39": ("kg39_disease", importers.kg39),
    "medical-kg": ("medical_kg", importers.medical_kg_triples),
    "csv": (None, importers.triple_csv),
    "jsonl": (None, importers.triple_jsonl),
}
_CODES: dict[str, tuple[str | None, Callable[[Path], Iterator[Any]], str]] = {
    "medical-kg": ("medical_kg", importers.medical_kg_vocabulary, importers.MEDICAL_KG_SOURCE),
    "icd10": ("icd10_cn_categories", importers.icd10_categories, importers.ICD10_SOURCE),
    "icd9cm3": ("icd9cm3_cn_procedures", importers.icd9cm3_procedures, importers.ICD9CM3_SOURCE),
    "drg": ("chs_drg_catalogue", importers.drg_codes, importers.DRG_SOURCE),
    "vocabulary": (None, importers.vocabulary_csv, "user vocabulary"),
}
FORMATS = sorted({*_TRIPLES, *_CODES})


def open_graph() -> Graph:
    db = get_database()
    packs.ensure_shipped(db)
    return Graph(db)


def _location(dataset: str | None, path: Path | None) -> Path:
    if dataset is None:
        if path is None or not path.is_file():
            raise InvalidInput.for_field("path", "需要文件路径 a file path is required for this format")
        return path
    return path or get_settings().shared_data / dataset


@app.command("import")
def import_(
    fmt: Annotated[str, typer.Argument(help=" | ".join(FORMATS))],
    path: Annotated[
        Path | None, typer.Argument(help="dataset folder (default under MEDFUSION_SHARED_DATA) or file")
    ] = None,
) -> None:
    """导入三元组或编码 Import triples or codes (idempotent): kg39, medical-kg, icd10, icd9cm3, drg, or
    the documented triple CSV/JSONL and vocabulary CSV."""
    if fmt not in FORMATS:
        raise InvalidInput.for_field("format", f"未知格式 unknown format {fmt!r} ({' | '.join(FORMATS)})")
    store = open_graph().store
    report: dict[str, Any] = {}
    # a user's file is validated whole before anything is stored: a bad line imports nothing
    if fmt in _CODES:
        dataset, codes, source = _CODES[fmt]
        where = _location(dataset, path)
        entries = codes(where) if dataset else iter(list(codes(where)))
        counts: ImportCounts = store.add_codes(entries, source=source if dataset else f"user:{where.name}")
        report["codes"] = counts.model_dump()
    if fmt in _TRIPLES:
        dataset, triples = _TRIPLES[fmt]
        where = _location(dataset, path)
        found = triples(where) if dataset else iter(list(triples(where)))
        report["triples"] = store.add(found).model_dump()
    typer.echo(json.dumps(report if len(report) > 1 else next(iter(report.values())), ensure_ascii=False))


def _emit(rows: Any) -> None:
    typer.echo(json.dumps(rows, ensure_ascii=False, indent=1, default=str))


@query_app.command("neighbours")
def neighbours(
    name: Annotated[str, typer.Argument()],
    relation: Annotated[Relation | None, typer.Option()] = None,
) -> None:
    """实体的邻居 An entity's typed neighbours, each with its source."""
    _emit([r.model_dump() for r in open_graph().queries.neighbours(name, relation)])


@query_app.command("path")
def path(
    start: Annotated[str, typer.Argument()],
    goal: Annotated[str, typer.Argument()],
    max_hops: Annotated[int, typer.Option(min=1, max=4)] = 3,
) -> None:
    """实体间的路径 A shortest typed path between two entities (names, codes or synonyms)."""
    _emit([e.model_dump() for e in open_graph().queries.path(start, goal, max_hops=max_hops)])


@query_app.command("diagnose")
def diagnose(
    symptoms: Annotated[str, typer.Option(help="逗号分隔的症状 comma-separated symptoms")],
    k: Annotated[int, typer.Option(min=1, max=50)] = 10,
) -> None:
    """按症状排序疾病 Diseases ranked by observed symptoms, with supporting and unobserved symptoms."""
    _emit([r.model_dump() for r in open_graph().queries.diagnose(split_terms(symptoms), k=k)])


@query_app.command("department")
def department(names: Annotated[str, typer.Option("--names", help="疾病或症状，逗号分隔")]) -> None:
    """就诊科室 Departments for diseases or symptoms, by votes."""
    rows = open_graph().queries.departments_for(split_terms(names))
    _emit([{"department": d, "votes": v} for d, v in rows])


@app.command("check")
def check(
    conditions: Annotated[str | None, typer.Option(help="诊断/状态，逗号分隔（名称或ICD-10编码）")] = None,
    allergies: Annotated[str | None, typer.Option(help="过敏原，逗号分隔")] = None,
    drugs: Annotated[str | None, typer.Option(help="拟用药物，逗号分隔（名称或ATC编码）")] = None,
    procedures: Annotated[str | None, typer.Option(help="拟行检查/操作，逗号分隔")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="机器可读输出")] = False,
) -> None:
    """冲突检查 Contraindications, interactions and cross-reactivity, each with its explaining path and
    source. Assistive: every finding needs a clinician's confirmation."""
    if not (drugs or procedures):
        raise InvalidInput.for_field("drugs", "至少给出一种拟用药物或操作 give --drugs or --procedures")
    report = ConflictChecker(open_graph()).check(
        split_terms(conditions),
        split_terms(allergies),
        split_terms(drugs),
        split_terms(procedures),
    )
    if as_json:
        typer.echo(report.model_dump_json(indent=1))
        return
    for conflict in report.conflicts:
        typer.echo(f"[{conflict.severity.value}] {conflict.type}: {' + '.join(conflict.items)}")
        typer.echo(f"    {conflict.explanation}")
        typer.echo(f"    {conflict.note or ''}  — {conflict.source}")
    for note in report.notes:
        typer.echo(f"[note:{note.severity.value}] {' + '.join(note.items)}: {note.note or ''}")
    for item in report.unresolved:
        typer.echo(f"[未识别 unresolved] {item.role}: {item.term}")
    if not report.conflicts:
        typer.echo("未发现冲突 no conflict found in the graph (needs clinician confirmation)")
