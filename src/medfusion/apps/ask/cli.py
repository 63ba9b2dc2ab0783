"""``medfusion ask "…" [--patient ID] [--json]`` — the platform's one question entry from the shell."""

from __future__ import annotations

from typing import Annotated

import typer

from medfusion.apps.ask.models import AskRequest
from medfusion.apps.ask.service import AskService
from medfusion.errors import InvalidInput
from medfusion.knowledge import packs
from medfusion.llm import get_general_model
from medfusion.settings import get_settings
from medfusion.store.access import system_principal
from medfusion.store.database import get_database

_PATH = {"specialist": "专科路径 specialist", "llm": "通用大模型 llm", "fused": "通专融合 fused"}


def ask(
    question: Annotated[str, typer.Argument(help="问题")],
    patient: Annotated[str | None, typer.Option("--patient", help="患者ID：结合其病历回答（审计）")] = None,
    reasoning: Annotated[str, typer.Option(help="direct | cot | tot（鉴别诊断思维树）")] = "direct",
    session: Annotated[str | None, typer.Option(help="会话ID：启用跨会话记忆")] = None,
    k: Annotated[int, typer.Option(min=1, max=20, help="passages to read")] = 5,
    as_json: Annotated[
        bool, typer.Option("--json", help="输出完整 JSON（证据、置信度、来源、状态、警示、轨迹）")
    ] = False,
) -> None:
    """问答 A cited answer, drafted by the general model when one is configured and checked by the
    guardrails; otherwise the knowledge layer's specialist answer. Assistive: a clinician confirms."""
    if reasoning not in {"direct", "cot", "tot"}:
        raise InvalidInput.for_field("--reasoning", "只能是 direct、cot 或 tot")
    request = AskRequest.model_validate(
        {"question": question, "patient_id": patient, "reasoning": reasoning, "session_id": session, "k": k}
    )
    db = get_database()
    packs.ensure_shipped(db)
    settings = get_settings()
    result = AskService(db, system_principal(), get_general_model(settings)).ask(request)
    if as_json:
        typer.echo(result.model_dump_json(indent=1))
        return
    typer.echo(result.answer)
    if result.differential:
        typer.echo("\n鉴别诊断 differential:")
        for h in result.differential.hypotheses:
            mark = "✓" if h.kept else f"✗ {h.pruned_because}"
            checks = "、".join(h.next_checks)
            typer.echo(f"  {mark} {h.disease}（支持：{'、'.join(h.supporting)}；建议检查：{checks}）")
    if result.evidence:
        typer.echo("")
    cited = {c for s in result.sentences for c in s.citations}
    for item in result.evidence:
        if item.id in cited:
            where = item.citation.label() if item.citation else item.text[:60]
            typer.echo(f"[{item.id}] {where} — {item.source}")
    for warning in result.warnings:
        typer.echo(f"⚠ [{warning.code}] {warning.message}")
    p = result.provenance
    via = (
        f"; model {p.model}" if p.model else (f"; general model not used: {p.fallback}" if p.fallback else "")
    )
    typer.echo(f"({_PATH[p.path]}{via}; confidence {result.confidence.value}; {result.status.value})")
