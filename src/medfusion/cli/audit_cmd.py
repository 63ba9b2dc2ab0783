from __future__ import annotations

import typer

from medfusion.errors import AuditChainBroken
from medfusion.store import audit
from medfusion.store.access import system_principal
from medfusion.store.database import get_database

app = typer.Typer(help="审计日志 audit log", no_args_is_help=True)


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
