"""``/docs`` works without internet, with a Swagger UI that can read the OpenAPI version we publish."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from medfusion.api import offline_docs


def _bundle_version(directory: Path) -> tuple[int, int, int]:
    # swagger-ui's webpack build embeds `PACKAGE_VERSION:"5.34.0"` in its build-info object
    text = (directory / "swagger-ui-bundle.js").read_text(encoding="utf-8")
    found = re.search(r'PACKAGE_VERSION:"(\d+)\.(\d+)\.(\d+)"', text)
    assert found is not None, "swagger-ui-bundle.js carries no PACKAGE_VERSION"
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch


def test_bundled_swagger_ui_can_render_the_openapi_version_we_publish(client: TestClient) -> None:
    # Swagger UI 4 shows "Unable to render this definition" for OpenAPI 3.1; 3.1 support arrived in 5.0
    spec_version = client.get("/openapi.json").json()["openapi"]
    major, _, _ = _bundle_version(offline_docs.assets_directory())
    if spec_version.startswith("3.1"):
        assert major >= 5, f"OpenAPI {spec_version} needs Swagger UI 5, bundled is {major}.x"
    else:
        assert spec_version.startswith("3.0"), spec_version


def test_docs_page_loads_only_assets_this_process_serves(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    page = response.text
    assert "<title>MedFusion 通专融合医疗AI平台 — API</title>" in page
    referenced = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert referenced, page
    assert not [url for url in referenced if "//" in url], f"external URLs in /docs: {referenced}"
    assert "'/openapi.json'" in page or '"/openapi.json"' in page
    expected_types = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for url in referenced:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert expected_types[Path(url).suffix] in asset.headers["content-type"], url


def test_every_asset_the_page_names_exists_in_the_installed_package() -> None:
    directory = offline_docs.assets_directory()
    for name in offline_docs.ASSET_FILES:
        assert (directory / name).stat().st_size > 0, name
    # the bundle is a full build (≈1.7 MB), not a loader that fetches the real one from elsewhere
    assert (directory / "swagger-ui-bundle.js").stat().st_size > 1_000_000


def test_oauth2_redirect_page_is_local(client: TestClient) -> None:
    response = client.get("/docs/oauth2-redirect")
    assert response.status_code == 200
    assert "http://" not in response.text and "https://" not in response.text


def test_redoc_is_disabled_rather_than_loaded_from_a_cdn(client: TestClient) -> None:
    # FastAPI's ReDoc page loads redoc.standalone.js from cdn.jsdelivr.net, so it stays switched off
    assert client.get("/redoc").status_code == 404


def test_a_missing_swagger_package_stops_start_up_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offline_docs, "ASSET_PACKAGE", "no_such_swagger_package")
    with pytest.raises(RuntimeError, match="no_such_swagger_package is not installed"):
        offline_docs.assets_directory()


def test_a_package_without_the_bundle_stops_start_up_naming_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offline_docs, "ASSET_FILES", ("swagger-ui-bundle.js", "swagger-ui-standalone.js"))
    with pytest.raises(RuntimeError, match=r"lacks swagger-ui-standalone\.js"):
        offline_docs.assets_directory()
