from __future__ import annotations

import sys
from typing import Annotated

import typer

from medfusion.errors import InvalidInput, MedFusionError
from medfusion.store import audit
from medfusion.store.access import system_principal
from medfusion.store.database import get_database
from medfusion.store.users import create_user, list_users

app = typer.Typer(help="用户 accounts", no_args_is_help=True)


@app.command("add")
def add(
    username: Annotated[str, typer.Option(help="用户名")],
    role: Annotated[str, typer.Option(help="doctor|nurse|manager|public_health|patient|auditor|admin")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="从标准输入读取密码")] = False,
    patient_id: Annotated[str | None, typer.Option(help="患者账号关联的病历 id")] = None,
) -> None:
    """新建用户 Add an account (password read from stdin, never from the command line)."""
    if not password_stdin:
        raise InvalidInput.for_field("--password-stdin", "请通过 --password-stdin 从标准输入提供密码")
    password = sys.stdin.readline().rstrip("\r\n")
    db = get_database()
    actor = system_principal().actor
    try:
        with db.session() as session:
            user = create_user(session, username, password, role, patient_id)
            audit.record(
                session,
                actor,
                "user.create",
                patient_id=patient_id,
                detail={"username": user.username, "role": user.role.value},
            )
    except MedFusionError as error:
        with db.session() as session:
            audit.record(
                session,
                actor,
                "user.create",
                audit.Outcome.failed,
                detail={"username": username, "error": error.code},
            )
        raise
    typer.echo(f"created user {user.username} ({user.role.value})")


@app.command("list")
def list_() -> None:
    """列出用户 List accounts."""
    db = get_database()
    with db.session() as session:
        users = list_users(session)
        audit.record(session, system_principal().actor, "user.list", detail={"count": len(users)})
    for user in users:
        linked = f" patient={user.patient_id}" if user.patient_id else ""
        typer.echo(f"{user.username}\t{user.role.value}{linked}{'' if user.active else ' (disabled)'}")
