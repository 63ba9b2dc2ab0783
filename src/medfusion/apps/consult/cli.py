"""``medfusion consult "主诉 + 发现" [--patient ID] [--level junior|attending|senior] [--json]``."""

from __future__ import annotations

from typing import Annotated

import typer

from medfusion.apps.consult.models import ConsultRequest
from medfusion.apps.consult.service import ConsultService
from medfusion.errors import InvalidInput
from medfusion.knowledge import packs
from medfusion.llm import get_general_model
from medfusion.settings import get_settings
from medfusion.store.access import system_principal
from medfusion.store.database import get_database


def consult(
    case: Annotated[str, typer.Argument(help="主诉 + 现病史/查体/检查发现")],
    patient: Annotated[str | None, typer.Option("--patient", help="患者ID：结合病历（审计）")] = None,
    level: Annotated[str, typer.Option(help="junior | attending | senior")] = "attending",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """口袋主任医师 Differential diagnosis with evidence, checks, treatment and drug ideas (a draft)."""
    if level not in {"junior", "attending", "senior"}:
        raise InvalidInput.for_field("--level", "只能是 junior、attending 或 senior")
    if len(case.strip()) < 2:
        raise InvalidInput.for_field("case", "请描述主诉和主要发现 describe the complaint and findings")
    request = ConsultRequest.model_validate({"case": case, "patient_id": patient, "level": level})
    db = get_database()
    packs.ensure_shipped(db)
    result = ConsultService(db, system_principal(), get_general_model(get_settings())).consult(request)
    if as_json:
        typer.echo(result.model_dump_json(indent=1))
        return
    typer.echo(result.answer)
    p = result.provenance
    via = f"model {p.model}" if p.model else f"general model not used: {p.fallback}"
    status = f"{result.status.value}; run {result.run_id}"
    typer.echo(f"\n({p.path}; {via}; confidence {result.confidence.value}; {status})")
