"""The web shell in headless Chromium: log in, search, open a chart, see an abnormal lab marked."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
CHROMIUM = os.environ.get("MEDFUSION_CHROMIUM", "/usr/bin/chromium")
# Flags for a closed network: without them Chromium keeps trying to reach Google's services.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "the playwright package (dev extras)"
    if missing is None and not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        missing = f"Chromium at {CHROMIUM} (Debian package 'chromium'; .ci/run installs it)"
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests need {missing}")
        pytest.skip(f"browser tests need {missing}")
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()


def _login(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/")
    assert "/login" in page.url
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_doctor_finds_a_diabetic_and_sees_the_abnormal_hba1c(
    browser: Any, server: dict[str, Any], tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    _login(page, server["base"], "demo_doctor", server["credentials"]["demo_doctor"])
    page.wait_for_url("**/patients")
    page.fill("input[name=diagnosis_code]", "E11")
    page.click("form.search button")
    page.wait_for_selector("#results")
    page.locator("a.patient-link").first.click()
    page.wait_for_selector("#labs")
    assert page.locator("#encounters li").count() >= 1
    assert page.locator("#vitals svg circle").count() >= 1
    abnormal = page.locator("#labs tr.abnormal")
    assert abnormal.count() >= 1
    row_text = " ".join(abnormal.all_inner_texts())
    assert "糖化血红蛋白" in row_text or "空腹血糖" in row_text
    assert "偏高" in row_text
    colour = abnormal.first.locator("td").first.evaluate("el => getComputedStyle(el).color")
    assert colour == "rgb(176, 58, 46)"  # --bad: abnormal values are shown in red
    page.screenshot(path=str(tmp_path / "chart.png"), full_page=True)
    page.close()


def test_patient_sees_only_their_own_chart(browser: Any, server: dict[str, Any]) -> None:
    page = browser.new_page()
    _login(page, server["base"], "demo_patient", server["credentials"]["demo_patient"])
    page.wait_for_url("**/patients/P0000001")
    assert page.locator("#demographics h1").inner_text().strip()
    page.goto(f"{server['base']}/patients/P0000002")
    assert "只能访问本人病历" in page.content()
    page.close()


def test_wrong_password_stays_on_the_login_page(browser: Any, server: dict[str, Any]) -> None:
    page = browser.new_page()
    _login(page, server["base"], "demo_nurse", "not-the-password")
    assert page.locator("[role=alert]").inner_text().startswith("用户名或密码错误")
    page.close()
