"""``medfusion user …`` — the same account administration as ``/api/users`` and the admin page
(:mod:`medfusion.store.account_admin`), as the local operator; every change audited. Passwords are read
from standard input, never from the command line (it would stay in the shell history and ``ps``)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from medfusion.errors import InvalidInput
from medfusion.record.clinical_time import format_local
from medfusion.settings import get_settings
from medfusion.store.access import Role, system_principal
from medfusion.store.account_admin import AccountAdmin
from medfusion.store.database import get_database

app = typer.Typer(help="用户 accounts", no_args_is_help=True)
_ROLES = "|".join(r.value for r in Role)


def _admin() -> AccountAdmin:
    settings = get_settings()
    return AccountAdmin(get_database(settings), settings, system_principal())


def _password(flag: bool, what: str) -> str:
    if not flag:
        raise InvalidInput.for_field("--password-stdin", f"请通过 --password-stdin 从标准输入提供{what}")
    return sys.stdin.readline().rstrip("\r\n")


@app.command("add")
def add(
    username: Annotated[str, typer.Option(help="用户名")],
    role: Annotated[str, typer.Option(help=_ROLES)],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="从标准输入读取密码")] = False,
    patient_id: Annotated[str | None, typer.Option(help="患者账号关联的病历 id")] = None,
) -> None:
    """新建用户 Add an account (password read from stdin, never from the command line)."""
    password = _password(password_stdin, "密码")
    user = _admin().add(username, password, role, patient_id)
    typer.echo(f"created user {user.username} ({user.role.value})")


@app.command("list")
def list_() -> None:
    """列出用户 List accounts: role, state, lockout end (display zone, with the zone)."""
    for user in _admin().accounts():
        linked = f" patient={user.patient_id}" if user.patient_id else ""
        state = "" if user.active else " (disabled)"
        if user.must_change_password:
            state += " (temporary password)"
        if user.locked_until:
            state += f" (locked until {format_local(user.locked_until)})"
        typer.echo(f"{user.username}\t{user.role.value}{linked}{state}")


@app.command("disable")
def disable(username: Annotated[str, typer.Argument(help="用户名")]) -> None:
    """停用账号 Disable an account: its sessions end at once (not the last active admin)."""
    _admin().disable(username)
    typer.echo(f"disabled {username}; its sessions have ended")


@app.command("enable")
def enable(username: Annotated[str, typer.Argument(help="用户名")]) -> None:
    """启用账号 Enable a disabled account (its old sessions stay ended)."""
    _admin().enable(username)
    typer.echo(f"enabled {username}")


@app.command("reset-password")
def reset_password(
    username: Annotated[str, typer.Argument(help="用户名")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="从标准输入读取临时密码")] = False,
) -> None:
    """重置密码 Set a temporary password: the user must choose their own at the next sign-in; their
    sessions end and a lockout is cleared."""
    _admin().reset_password(username, _password(password_stdin, "临时密码"))
    typer.echo(f"temporary password set for {username}; they must change it at the next sign-in")


@app.command("unlock")
def unlock(username: Annotated[str, typer.Argument(help="用户名")]) -> None:
    """解除锁定 Clear a lockout after repeated failed sign-ins, now."""
    _admin().unlock(username)
    typer.echo(f"unlocked {username}")


@app.command("role")
def role(
    username: Annotated[str, typer.Argument(help="用户名")],
    new_role: Annotated[str, typer.Argument(metavar="ROLE", help=_ROLES)],
    patient_id: Annotated[str | None, typer.Option(help="患者账号关联的病历 id")] = None,
) -> None:
    """更改角色 Change an account's role (takes effect on its next request; not the last active admin)."""
    user = _admin().change_role(username, new_role, patient_id)
    typer.echo(f"{user.username} is now {user.role.value}")


@app.command("sign-out")
def sign_out(username: Annotated[str, typer.Argument(help="用户名")]) -> None:
    """强制下线 End every session of an account (its tokens stop working)."""
    _admin().sign_out(username)
    typer.echo(f"signed out every session of {username}")
