"""``medfusion serve`` — the API and web UI under uvicorn, in one process or several workers.

With ``--workers N`` (N > 1) uvicorn starts N processes, each importing the application by name
(``medfusion.api.app:create_app``, a factory) — an application object cannot be handed to worker
processes. Before they start, this process migrates the database and settles the token signing key (a
key generated under the data directory is written once here, so every worker signs and checks tokens
with the same one), and it runs the one record-event dispatcher; the workers run none (``Database`` and
the dispatcher's docstring: one dispatcher per database). Settings reach the workers through the
environment (``MEDFUSION_*``), as they reach this process.
"""

from __future__ import annotations

from typing import Annotated

import typer

from medfusion.settings import child_environment, get_settings


def serve(
    host: Annotated[str | None, typer.Option(help="监听地址 bind address")] = None,
    port: Annotated[int | None, typer.Option(help="端口 port")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="工作进程数 worker processes (N > 1 wants PostgreSQL: MEDFUSION_DATABASE_URL=postgresql://…)",
        ),
    ] = 1,
) -> None:
    """启动 API 服务 Start the API server (migrates the database first)."""
    import uvicorn

    from medfusion.api.app import create_app, start_event_worker
    from medfusion.logs import log_config
    from medfusion.store.database import get_database

    settings = get_settings()
    bind_host, bind_port = host or settings.host, port or settings.port
    typer.echo(
        f"MedFusion 网页 web UI: http://{bind_host}:{bind_port}/   API docs: http://{bind_host}:{bind_port}/docs"
    )
    if workers == 1:
        uvicorn.run(
            create_app(settings),
            host=bind_host,
            port=bind_port,
            log_config=log_config(settings.log_level),
            access_log=False,
            server_header=False,
        )
        return
    db = get_database(settings)  # migrate once, here, not in N workers at the same time
    settings.signing_key()
    if db.dialect == "sqlite":
        typer.echo(
            f"注意 note: {workers} 个进程共用一个 SQLite 文件，写入排队 — 多进程部署请用 PostgreSQL "
            "(several processes share one SQLite writer; use PostgreSQL for multi-worker deployments)",
            err=True,
        )
    event_worker = start_event_worker(db, settings)
    try:
        with child_environment({"MEDFUSION_EVENTS_DISPATCH": "false"}):
            uvicorn.run(
                "medfusion.api.app:create_app",
                factory=True,
                # a worker still importing the app (seconds on a busy machine) is not a hung one;
                # uvicorn's default 5 s health check killed and restarted workers during start-up
                timeout_worker_healthcheck=30,
                workers=workers,
                host=bind_host,
                port=bind_port,
                log_config=log_config(settings.log_level),
                access_log=False,
                server_header=False,
            )
    finally:
        if event_worker is not None:
            event_worker.stop()
