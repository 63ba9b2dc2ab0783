"""``medfusion feedback`` — review drafts from the shell and export training data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from medfusion.errors import InvalidInput
from medfusion.feedback.export import export
from medfusion.feedback.service import Action, FeedbackRequest, FeedbackService
from medfusion.store.access import system_principal
from medfusion.store.database import get_database

app = typer.Typer(
    help="临床反馈 Clinician feedback: review drafts, export DPO/SFT data.", no_args_is_help=True
)


@app.command("give")
def give(
    run_id: Annotated[str, typer.Argument(help="草稿（问答/会诊）的 run_id")],
    action: Annotated[Action, typer.Option(help="accept | edit | reject")],
    edited: Annotated[str | None, typer.Option(help="修改后的文本（edit）")] = None,
    reason: Annotated[str | None, typer.Option(help="原因（reject 必填）")] = None,
) -> None:
    """采纳、修改或驳回 Accept, edit or reject a stored draft (audited)."""
    try:
        request = FeedbackRequest(run_id=run_id, action=action, edited=edited, reason=reason)
    except ValidationError as error:
        reason_text = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors())
        raise InvalidInput.for_field("feedback", reason_text) from None
    record = FeedbackService(get_database(), system_principal()).record(request)
    typer.echo(
        f"{record.action.value}: run {record.run_id} → {record.status}; "
        f"{record.passages} passage(s) re-weighted"
    )


@app.command("list")
def entries(
    run_id: Annotated[str | None, typer.Option(help="只看某个 run")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """反馈记录 The latest feedback acts."""
    for e in FeedbackService(get_database(), system_principal()).entries(run_id, limit):
        typer.echo(
            f"{e.at:%Y-%m-%d %H:%M} {e.username} {e.action.value:6s} {e.kind} {e.run_id} {e.prompt[:40]}"
        )


@app.command("export")
def export_cmd(
    fmt: Annotated[str, typer.Option("--format", help="dpo | sft")],
    out: Annotated[Path, typer.Option(help="输出 JSONL 文件")],
    keep_identifiers: Annotated[bool, typer.Option(help="不去标识（仅限院内训练）")] = False,
) -> None:
    """导出训练数据 Preference pairs (DPO) or accepted/edited drafts (SFT) as JSONL, de-identified."""
    if fmt not in {"dpo", "sft"}:
        raise InvalidInput.for_field("--format", "只能是 dpo 或 sft")
    report = export(
        get_database(), system_principal(), "dpo" if fmt == "dpo" else "sft", out, keep_identifiers
    )
    typer.echo(
        f"{report.rows} {fmt} rows from {report.acts} feedback acts → {out}"
        f"{'' if report.deidentified else ' (identifiers kept)'}"
    )
