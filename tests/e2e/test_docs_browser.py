"""``/docs`` in headless Chromium with every non-local request blocked: Swagger UI renders our OpenAPI 3.1
document and can call an operation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture
def docs_page(browser: Any, server: dict[str, Any]) -> Iterator[tuple[Any, list[str]]]:
    """A page that refuses every request leaving the test server, like a hospital network without internet."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    own_host = urlparse(server["base"]).netloc
    blocked: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if urlparse(url).netloc == own_host or url.startswith(("data:", "blob:")):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    page.route("**/*", route)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page, blocked
    page.close()
    assert not errors, f"JavaScript errors on /docs: {errors}"


def test_swagger_ui_renders_the_openapi_31_document_offline(
    docs_page: tuple[Any, list[str]], server: dict[str, Any], tmp_path: Path
) -> None:
    page, blocked = docs_page
    page.goto(f"{server['base']}/docs")
    page.wait_for_selector(".swagger-ui .information-container .title", timeout=30_000)
    page.wait_for_selector(".swagger-ui .opblock-tag-section .opblock-tag", timeout=30_000)
    body = page.inner_text("body")
    assert "Unable to render" not in body
    assert "MedFusion 通专融合医疗AI平台" in page.inner_text(".information-container .title")
    assert "OAS 3.1" in page.inner_text(".information-container")
    tags = page.locator(".opblock-tag").all_inner_texts()
    assert any("patients 患者" in tag for tag in tags), tags
    assert any(tag.strip().startswith("health") for tag in tags), tags
    version = page.evaluate(
        "() => window.versions && window.versions.swaggerUI && window.versions.swaggerUI.version"
    )
    assert isinstance(version, str) and int(version.split(".")[0]) >= 5, version
    page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
    assert not blocked, f"/docs tried to leave the server: {blocked}"


def test_try_it_out_calls_the_health_operation_on_this_server(
    docs_page: tuple[Any, list[str]], server: dict[str, Any]
) -> None:
    page, blocked = docs_page
    page.goto(f"{server['base']}/docs#/health/health_health_get")
    operation = page.locator("#operations-health-health_health_get")
    operation.wait_for(timeout=30_000)
    if not operation.locator(".opblock-body").count():  # deep link did not open it: open it by hand
        operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status")
    status.first.wait_for(timeout=30_000)
    assert status.first.inner_text().strip() == "200"
    assert '"status"' in operation.locator(".live-responses-table .microlight").first.inner_text()
    assert not blocked, f"/docs tried to leave the server: {blocked}"
