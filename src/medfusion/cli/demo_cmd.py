from __future__ import annotations

import json
import os
import secrets
from typing import Annotated

import typer

from medfusion.settings import get_settings
from medfusion.store import audit
from medfusion.store.access import ROLE_LABELS, Role, system_principal
from medfusion.store.database import get_database
from medfusion.store.patients import PatientRepository
from medfusion.store.users import create_user, get_user

app = typer.Typer(help="演示数据 demo data", no_args_is_help=True)
DEMO_SEED = 20250630
DEMO_SIZE = 300


@app.command("seed")
def seed(
    size: Annotated[int, typer.Option(min=1, max=100_000, help="演示患者数")] = DEMO_SIZE,
) -> None:
    """载入演示患者与每个角色一个演示账号（幂等），并打印账号密码。"""
    from medfusion.cli.synth_cmd import load_into_db

    settings = get_settings()
    db = get_database(settings)
    with db.session() as session:
        present = PatientRepository(session).count()
    if present == 0:
        result = load_into_db(size, DEMO_SEED, show_progress=True)
        typer.echo(f"已载入演示患者 loaded {result.items} synthetic patients (seed {DEMO_SEED})")
    else:
        typer.echo(f"数据库已有 {present} 位患者，跳过载入 database already holds patients; not reseeding")
    cred_file = settings.resolved_data_dir / "demo-credentials.json"
    credentials: dict[str, str] = json.loads(cred_file.read_text()) if cred_file.exists() else {}
    with db.session() as session:
        first_patient = PatientRepository(session).ids(limit=1)
        for role in Role:
            username = f"demo_{role.value}"
            if get_user(session, username) is not None:
                continue
            if role is Role.patient and not first_patient:
                continue
            password = secrets.token_urlsafe(9)
            create_user(session, username, password, role, first_patient[0] if role is Role.patient else None)
            audit.record(
                session,
                system_principal().actor,
                "user.create",
                patient_id=first_patient[0] if role is Role.patient else None,
                detail={"username": username, "role": role.value, "demo": True},
            )
            credentials[username] = password
    fd = os.open(cred_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(credentials, fh, ensure_ascii=False, indent=1)
    typer.echo("\n演示账号 demo accounts (仅供演示 demo only; stored in " + str(cred_file) + "):")
    for role in Role:
        username = f"demo_{role.value}"
        if username in credentials:
            typer.echo(f"  {ROLE_LABELS[role]:<8}\t{username:<20}\t{credentials[username]}")
