from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from medfusion.errors import InvalidFhir
from medfusion.graph import Graph
from medfusion.graph.code_mapping import LexiconMapper
from medfusion.interop.fhir import Profile
from medfusion.store.access import system_principal
from medfusion.store.database import get_database
from medfusion.store.patient_service import PatientService

app = typer.Typer(help="FHIR R4 导入导出 import and export", no_args_is_help=True)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise InvalidFhir.for_field(str(path), "不是有效的 JSON not valid JSON") from None


def _read_bundles(path: Path) -> list[Any]:
    """One Bundle (JSON), or NDJSON: one Bundle per line (``synth --format fhir``), each imported on its
    own, or one resource per line (FHIR Bulk Data), imported together as one ``collection`` Bundle."""
    try:
        return [json.loads(path.read_bytes())]
    except (ValueError, UnicodeDecodeError):
        pass
    items: list[Any] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise InvalidFhir.for_field(str(path), "不是有效的 JSON not valid JSON") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except ValueError:
            raise InvalidFhir.for_field(
                f"{path}:{number}", "不是有效的 JSON 或 NDJSON not valid JSON or NDJSON"
            ) from None
    if items and all(isinstance(i, dict) and i.get("resourceType") == "Bundle" for i in items):
        return items
    return [{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": i} for i in items]}]


@app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="FHIR R4 Bundle JSON")
    ],
    strict: Annotated[bool, typer.Option(help="任何无法原样保存的内容都视为错误")] = False,
    merge: Annotated[bool, typer.Option("--merge", help="冲突写为新版本（旧版本保留在历史中）")] = False,
    profile: Annotated[
        Profile,
        typer.Option(help="r4：R4 允许的都接受；medfusion-strict：本院数据源的严格规则 (feeds we control)"),
    ] = Profile.r4,
    as_json: Annotated[
        bool, typer.Option("--json", help="以 JSON 输出导入结果 (counts, unmapped, raw)")
    ] = False,
) -> None:
    """导入 FHIR Bundle（全部成功或全部不写；不覆盖已存内容）Import a Bundle, all or nothing, no overwrite.

    A Patient that conflicts with the stored one (same id or 身份证号, another person; or a stored resource
    with other content) exits 2 with a one-line ``[patient_identity_conflict]`` /
    ``[chart_resource_conflict]`` error and writes nothing. ``--merge``: those conflicts become new
    versions of the resources and of the Patient (``medfusion patient history`` shows the earlier ones)."""
    db = get_database()
    service, mapper = PatientService(db, system_principal()), LexiconMapper(Graph(db))
    summaries: list[dict[str, Any]] = []
    refused = 0
    for bundle in _read_bundles(file):
        result = service.import_fhir(bundle, strict=strict, merge=merge, profile=profile.value, mapper=mapper)
        summary = result.summary()
        summaries.append(summary)
        refused += len(summary["refused"])
        if as_json:
            continue
        for issue in result.issues:
            typer.echo(f"  [{issue.kind}] {issue.path}: {issue.message}", err=True)
        typer.echo(f"imported {len(result.charts)} patient(s): {', '.join(result.patient_ids)}")
        typer.echo(
            f"  created {len(result.created)}, updated {len(result.updated)}, "
            f"unchanged {len(result.unchanged)}; "
            f"resources added {result.resources_added}, unchanged {result.resources_unchanged}; "
            f"raw kept {len(result.raw)} (raw only: {summary['raw_only'] or 0}); "
            f"unmapped {summary['unmapped']}"
        )
        for revision in result.revised:  # merge mode: what became a new version (field names only)
            typer.echo(f"  new version of {revision['resource']}: {', '.join(revision['fields'])}")
    if as_json:
        typer.echo(json.dumps(summaries[0] if len(summaries) == 1 else summaries, ensure_ascii=False))
    if refused:  # entries not applied (a DELETE or GET in a batch): said, and not a success
        raise typer.Exit(1)


@app.command("export")
def export(
    patient: Annotated[str, typer.Option("--patient", help="患者 id")],
    out: Annotated[Path | None, typer.Option(help="输出文件（默认标准输出）")] = None,
) -> None:
    """导出患者病历为 FHIR R4 Bundle Export one chart as a Bundle."""
    service = PatientService(get_database(), system_principal())
    text = json.dumps(service.export_fhir(patient), ensure_ascii=False, indent=2)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {out}")
    else:
        typer.echo(text)
