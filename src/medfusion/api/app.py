"""The FastAPI application: routers, error envelope, size limit, PII-free access log, OpenAPI at /docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from medfusion import __version__
from medfusion.api import (
    audit_log,
    auth,
    errors,
    feedback,
    graph,
    knowledge,
    offline_docs,
    patients,
    privacy,
    runs,
    users,
)
from medfusion.api import evaluation as eval_api
from medfusion.api.deps import ApiProviders
from medfusion.api.limits import AccessLog, BodySizeLimit
from medfusion.apps import registry
from medfusion.settings import Settings, get_settings
from medfusion.store.database import Database, get_database
from medfusion.store.event_dispatch import subscribers
from medfusion.store.event_relays import RelayThread, make_relay
from medfusion.web import admin_pages, knowledge_pages, oversight_pages, pages, pharmacy_pages

DESCRIPTION = """
MedFusion 通专融合医疗AI平台 API. 除 `/health` 外所有接口都需要 Bearer 令牌（`POST /api/auth/token`）。
Errors are `{"error": {"code", "message", "details"}}`. Every access to patient data is audited.
"""


class Health(BaseModel):
    status: str
    version: str
    database: str
    schema_revision: str | None


def start_event_worker(db: Database, settings: Settings) -> RelayThread | None:
    """Record events reach the apps' subscribers in this process (the embedded default), or through the
    NATS relay when MEDFUSION_EVENTS_RELAY names one — one such worker per database (``serve --workers N``
    runs it in the parent, not in each worker)."""
    registry.install_subscribers()
    return RelayThread(make_relay(db, settings=settings)).start() if subscribers.names() else None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    db = get_database(settings)
    installed = registry.apps()  # a malformed APP stops start-up here, naming the app and the field
    registry.install_subscribers()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker = start_event_worker(db, settings) if settings.events_dispatch else None
        yield
        if worker is not None:
            worker.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="MedFusion 通专融合医疗AI平台",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
    )
    offline_docs.install(app)
    app.state.providers = ApiProviders(db, settings)  # what every router's dependencies read
    errors.install(app)
    platform = (
        auth.router,
        patients.router,
        users.router,
        audit_log.router,
        privacy.router,
        knowledge.router,
        graph.router,
        runs.router,
        feedback.router,
        eval_api.router,
    )
    apps = [spec.router for spec in installed if spec.router is not None]
    app_pages = [spec.pages for spec in installed if spec.pages is not None]
    web = (
        pages.router,
        knowledge_pages.router,
        admin_pages.router,
        oversight_pages.router,
        pharmacy_pages.router,
    )
    for router in (*platform, *apps, *app_pages, *web):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=Path(pages.__file__).with_name("static")), name="static")

    @app.get("/health", response_model=Health, tags=["health"], summary="健康检查（无需登录）")
    def health() -> Health:
        return Health(
            status="ok", version=__version__, database=db.dialect, schema_revision=db.current_revision()
        )

    # document uploads (guideline PDFs) may be larger than any other request: their routes alone get the
    # upload limit plus room for the multipart envelope
    uploads = max(settings.max_request_bytes, settings.kb_upload_max_bytes + 1024 * 1024)
    upload_routes = {path: uploads for path in ("/api/kb/documents", knowledge_pages.UPLOAD_PATH)}
    app.add_middleware(BodySizeLimit, limit=settings.max_request_bytes, routes=upload_routes)
    app.add_middleware(AccessLog)
    return app
