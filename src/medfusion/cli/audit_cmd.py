"""``medfusion audit …`` — list, export and verify the audit log as the local operator (reads audited).

Times are stored in UTC and shown in the display zone with the zone's name (``MEDFUSION_TIMEZONE``,
Asia/Shanghai by default) — the same formatting as the pages; ``--since`` / ``--until`` without an offset
mean display-zone time."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from medfusion.errors import AuditChainBroken
from medfusion.record.clinical_time import display_zone, format_local
from medfusion.store import audit
from medfusion.store.access import system_principal
from medfusion.store.audit_export import csv_lines, entry_time, parse_instant
from medfusion.store.database import get_database

app = typer.Typer(help="审计日志 audit log (times in the display zone, stored in UTC)", no_args_is_help=True)

_Actor = Annotated[str | None, typer.Option("--user", help="用户名 username")]
_Action = Annotated[str | None, typer.Option(help="操作，如 auth.login；以 . 结尾为前缀，如 user.")]
_Patient = Annotated[str | None, typer.Option("--patient", help="患者 id")]
_Since = Annotated[str | None, typer.Option(help="起（含），如 2026-12-01T08:00，无时区即显示时区")]
_Until = Annotated[str | None, typer.Option(help="止（不含），同上")]


def _query(
    actor: str | None, action: str | None, patient: str | None, since: str | None, until: str | None
) -> audit.AuditQuery:
    return audit.AuditQuery(
        actor=actor,
        action=action,
        patient_id=patient,
        since=parse_instant(since, "--since"),
        until=parse_instant(until, "--until"),
    )


@app.command("list")
def list_(
    actor: _Actor = None,
    action: _Action = None,
    patient: _Patient = None,
    since: _Since = None,
    until: _Until = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="最多条数（最新的在前）")] = 50,
) -> None:
    """列出审计条目 The newest entries first, times in the display zone with the zone."""
    q = _query(actor, action, patient, since, until)
    db = get_database()
    with db.session() as session:
        found = audit.search(session, q, limit=limit)
        audit.record(
            session,
            system_principal().actor,
            "audit.read",
            patient_id=q.patient_id,
            detail={"count": len(found), "surface": "cli", **q.active()},
        )
    typer.echo(f"# {len(found)} entries; times in {display_zone().key}")
    for e in found:
        typer.echo(
            "\t".join(
                (
                    str(e.seq),
                    format_local(entry_time(e), "%Y-%m-%d %H:%M:%S"),
                    e.actor,
                    e.role,
                    e.action,
                    e.patient_id or "-",
                    e.outcome,
                )
            )
        )


@app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="CSV 文件；- 为标准输出")],
    actor: _Actor = None,
    action: _Action = None,
    patient: _Patient = None,
    since: _Since = None,
    until: _Until = None,
) -> None:
    """导出 CSV Every matching entry, oldest first, with UTC and display-zone times (audited)."""
    q = _query(actor, action, patient, since, until)
    db = get_database()
    with db.session() as session:
        total, upto = audit.count(session, q), audit.head_seq(session)
        audit.record(
            session,
            system_principal().actor,
            "audit.export",
            patient_id=q.patient_id,
            detail={"count": total, "surface": "cli", **q.active()},
        )
    with db.read_session() as session:
        lines = csv_lines(audit.matching(session, q, upto=upto))
        if str(out) == "-":
            for line in lines:
                sys.stdout.write(line)
        else:
            with out.open("w", encoding="utf-8", newline="") as fh:
                fh.writelines(lines)
            typer.echo(f"exported {total} entries to {out}")


@app.command("verify")
def verify() -> None:
    """校验审计哈希链；有改动、删除或乱序时以非零状态退出并指出第一条坏记录。"""
    db = get_database()
    with db.session() as session:
        result = audit.verify(session)
    with db.session() as session:
        audit.record(
            session,
            system_principal().actor,
            "audit.verify",
            "success" if result.ok else "failed",
            detail={"entries": result.entries, "first_bad_seq": result.first_bad_seq},
        )
    if not result.ok:
        raise AuditChainBroken(
            f"审计链在第 {result.first_bad_seq} 条处断开 chain broken at entry "
            f"{result.first_bad_seq}: {result.reason}",
            details=result.model_dump(),
        )
    typer.echo(f"审计链完整 audit chain intact: {result.entries} entries")
