"""``medfusion patient`` — a chart's version history and soft delete (through the patient service)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from medfusion.errors import InvalidInput
from medfusion.store.access import system_principal
from medfusion.store.database import get_database
from medfusion.store.patient_service import PatientService
from medfusion.store.resource_versions import KINDS

app = typer.Typer(help="患者病历版本与删除 chart history and soft delete", no_args_is_help=True)


def _kind(value: str | None) -> str | None:
    if value is not None and value not in KINDS:
        raise InvalidInput.for_field("kind", f"应为 one of {', '.join(KINDS)}")
    return value


@app.command("history")
def history(
    patient_id: Annotated[str, typer.Argument(help="患者 id")],
    kind: Annotated[str | None, typer.Option(help=f"条目类型 {'|'.join(KINDS)}")] = None,
    resource: Annotated[str | None, typer.Option("--resource", help="条目 id（需 --kind）")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="完整版本内容（JSON）")] = False,
) -> None:
    """病历版本历史，新的在前（含已删除条目）Every version of a chart's resources, newest first."""
    if resource is not None and kind is None:
        raise InvalidInput.for_field("kind", "--resource 需要 --kind needs --kind")
    page = PatientService(get_database(), system_principal()).history(
        patient_id, kind=_kind(kind), resource_id=resource, limit=limit
    )
    if as_json:
        typer.echo(page.model_dump_json(indent=1))
        return
    typer.echo(f"{page.total} version(s) of Patient/{patient_id}'s chart")
    for v in page.items:
        why = f" — {v.reason}" if v.reason else ""
        changes = f" [{', '.join(v.changes)}]" if v.changes else ""
        typer.echo(
            f"  {v.at.isoformat(timespec='seconds')}  {v.resource_type}/{v.resource_id} v{v.version} "
            f"{v.action.value} by {v.actor} via {v.source}{changes}{why}"
        )


@app.command("delete")
def delete(
    patient_id: Annotated[str, typer.Argument(help="患者 id")],
    kind: Annotated[str, typer.Argument(help="条目类型 encounters|conditions|observations|…")],
    resource_id: Annotated[str, typer.Argument(help="条目 id")],
    reason: Annotated[str, typer.Option("--reason", help="删除原因（必填）")],
) -> None:
    """软删除一个病历条目：从病历隐藏，保留在历史中 Soft-delete one chart item (reason required)."""
    version = PatientService(get_database(), system_principal()).delete_resource(
        patient_id, str(_kind(kind)), resource_id, reason
    )
    typer.echo(json.dumps({"deleted": f"{kind}/{resource_id}", "version": version}, ensure_ascii=False))
