"""``/docs``: Swagger UI 5 served by this process from the ``fastapi-swagger`` wheel.

FastAPI's default docs page loads Swagger UI from a CDN, which a hospital network without internet access
cannot reach; here every asset comes from this process. Swagger UI 5 is needed because FastAPI
publishes OpenAPI 3.1, which Swagger UI 4 (the ``swagger-ui-bundle`` wheel) refuses ("Unable to render this
definition"). The ``fastapi-swagger`` wheel carries swagger-ui-dist's files unchanged (byte-identical to the
npm release, see docs/dependencies.md); we only read its ``resources`` folder and do not call its
``patch_fastapi``, which would also redirect ``/`` (the web UI's home) to the docs.

ReDoc stays disabled (``redoc_url=None`` in :func:`medfusion.api.app.create_app`): no wheel ships its bundle
and FastAPI's ReDoc page loads it from a CDN.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
ASSET_PACKAGE = "fastapi_swagger"
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")


def assets_directory() -> Path:
    """The folder holding Swagger UI's files inside the installed ``fastapi-swagger`` package.

    Located without importing the package (its ``__init__`` imports FastAPI helpers we do not use); a missing
    package or file is a broken installation and stops start-up here rather than on the first page view.
    """
    spec = importlib.util.find_spec(ASSET_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{ASSET_PACKAGE} is not installed; reinstall medfusion (`make install`)")
    directory = Path(spec.origin).parent / "resources"
    missing = [name for name in ASSET_FILES if not (directory / name).is_file()]
    if missing:
        raise RuntimeError(f"{ASSET_PACKAGE} at {directory} lacks {', '.join(missing)}")
    return directory


def install(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=assets_directory()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
