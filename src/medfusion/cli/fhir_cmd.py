from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from medfusion.errors import InvalidFhir
from medfusion.store.access import system_principal
from medfusion.store.database import get_database
from medfusion.store.patient_service import PatientService

app = typer.Typer(help="FHIR R4 导入导出 import and export", no_args_is_help=True)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise InvalidFhir.for_field(str(path), "不是有效的 JSON not valid JSON") from None


@app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="FHIR R4 Bundle JSON")
    ],
    strict: Annotated[bool, typer.Option(help="任何无法原样保存的内容都视为错误")] = False,
) -> None:
    """导入 FHIR Bundle（全部成功或全部不写；不覆盖已存内容）Import a Bundle, all or nothing, no overwrite.

    A Patient that conflicts with the stored one (same id or 身份证号, another person; or a stored resource
    with other content) exits 2 with a one-line ``[patient_identity_conflict]`` /
    ``[chart_resource_conflict]`` error and writes nothing."""
    service = PatientService(get_database(), system_principal())
    result = service.import_fhir(_read_json(file), strict=strict)
    for issue in result.issues:
        typer.echo(f"  [{issue.kind}] {issue.path}: {issue.message}", err=True)
    typer.echo(f"imported {len(result.charts)} patient(s): {', '.join(result.patient_ids)}")
    typer.echo(
        f"  created {len(result.created)}, updated {len(result.updated)}, unchanged {len(result.unchanged)}; "
        f"resources added {result.resources_added}, unchanged {result.resources_unchanged}"
    )


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
