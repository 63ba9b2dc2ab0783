"""``medfusion mdt run --bundle FILE | --patient ID | --case TEXT [--json]`` — prints the Markdown minutes
(a draft)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from medfusion.apps.mdt.models import MdtRequest
from medfusion.apps.mdt.service import MdtService
from medfusion.errors import InvalidInput
from medfusion.knowledge import packs
from medfusion.llm import get_general_model
from medfusion.settings import get_settings
from medfusion.store.access import system_principal
from medfusion.store.database import get_database

app = typer.Typer(help="多学科会诊 MDT consultation.", no_args_is_help=True)


@app.command("run")
def run(
    bundle: Annotated[Path | None, typer.Option(help="FHIR R4 Bundle（一位患者）")] = None,
    patient: Annotated[str | None, typer.Option("--patient", help="库中患者ID（审计）")] = None,
    case: Annotated[str | None, typer.Option("--case", help="病例摘要文本（诊断、用药、过敏）")] = None,
    question: Annotated[str, typer.Option(help="会诊目的")] = "",
    drug: Annotated[list[str] | None, typer.Option("--drug", help="拟用药物（可多次）")] = None,
    procedure: Annotated[list[str] | None, typer.Option("--procedure", help="拟行操作（可多次）")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """多学科会诊 Specialties in parallel, weighted Borda consensus, graph conflict check, minutes."""
    body = None
    if bundle is not None:
        try:
            body = json.loads(bundle.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise InvalidInput.for_field(
                "--bundle", f"不是合法的 JSON: {error.msg} (line {error.lineno})"
            ) from None
    try:
        request = MdtRequest(
            patient_id=patient,
            bundle=body,
            case=case,
            question=question,
            proposed_drugs=drug or [],
            proposed_procedures=procedure or [],
        )
    except ValidationError:
        raise InvalidInput.for_field(
            "--bundle/--patient/--case", "请给出 --bundle、--patient 或 --case 之一"
        ) from None
    db = get_database()
    packs.ensure_shipped(db)
    result = MdtService(db, system_principal(), get_general_model(get_settings())).run(request)
    if as_json:
        typer.echo(result.model_dump_json(indent=1))
        return
    typer.echo(result.minutes)
    typer.echo(
        f"\n({result.provenance.path}; {result.routing}; tokens {result.tokens}; confidence "
        f"{result.confidence.value}; {result.status.value}; run {result.run_id})"
    )
