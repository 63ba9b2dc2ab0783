from __future__ import annotations

import typer

from medfusion.settings import get_settings
from medfusion.store.database import Database

app = typer.Typer(help="数据库 database schema", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """创建或迁移数据库到最新版本 Create or migrate the database to the newest schema."""
    settings = get_settings()
    db = Database(settings.resolved_database_url)
    revision = db.upgrade()
    typer.echo(f"database {db.dialect} at revision {revision}")
    from medfusion.knowledge import packs

    for info in packs.ensure_shipped(db):
        typer.echo(f"knowledge pack {info.name} {info.version}: {info.status}")
