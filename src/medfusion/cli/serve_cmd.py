from __future__ import annotations

from typing import Annotated

import typer

from medfusion.settings import get_settings


def serve(
    host: Annotated[str | None, typer.Option(help="监听地址 bind address")] = None,
    port: Annotated[int | None, typer.Option(help="端口 port")] = None,
) -> None:
    """启动 API 服务 Start the API server (migrates the database first)."""
    import uvicorn

    from medfusion.api.app import create_app
    from medfusion.logs import log_config

    settings = get_settings()
    app = create_app(settings)
    bind_host, bind_port = host or settings.host, port or settings.port
    typer.echo(
        f"MedFusion 网页 web UI: http://{bind_host}:{bind_port}/   API docs: http://{bind_host}:{bind_port}/docs"
    )
    uvicorn.run(
        app,
        host=bind_host,
        port=bind_port,
        log_config=log_config(settings.log_level),
        access_log=False,
        server_header=False,
    )
