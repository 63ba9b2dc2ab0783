"""会诊 (/consult) and MDT (/mdt) in headless Chromium at phone (390 px) and desktop (1366 px) width: a doctor
signs in, opens 会诊 from the navigation, runs a sample case, sees the red flag first and follows a citation;
then opens MDT, starts it from a chart or a pasted case, watches the specialties answer, reads the minutes,
downloads them as .docx, finds the draft in 待审草稿 and signs out. Also: the MDT page works without
JavaScript (a meta refresh), a session that expires mid-form keeps what was typed, a double click makes one
run, and the pages pass axe's serious/critical checks."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import docx
import pytest

pytestmark = pytest.mark.e2e
SHOTS = Path(__file__).with_name("screenshots")
AF_CASE = (
    "68岁男性。诊断：心房颤动，2型糖尿病，慢性肾脏病3期。在用华法林、二甲双胍。青霉素过敏。"
    "因膝关节疼痛拟加用布洛芬。"
)


def _sign_in(page: Any, base: str, username: str, password: str, start: str = "/") -> None:
    page.goto(f"{base}{start}")
    assert "/login" in page.url
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def _nav(page: Any, name: str) -> None:
    toggle = page.locator(".nav-toggle-btn")
    if toggle.is_visible():  # the phone layout folds the navigation behind 菜单
        toggle.click()
    page.get_by_role("link", name=name, exact=True).click()


def _sign_out(page: Any) -> None:
    toggle = page.locator(".nav-toggle-btn")
    if toggle.is_visible():
        toggle.click()
    page.click("form[action='/logout'] button[type=submit]")
    page.wait_for_url("**/login")


def _no_sideways_scroll(page: Any, width: int) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px at {width}px"


@pytest.mark.parametrize("width", [390, 1366])
def test_a_doctor_consults_then_runs_an_mdt_and_downloads_the_minutes(
    browser: Any, server: dict[str, Any], width: int, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900}, accept_downloads=True)
    base, password = server["base"], server["credentials"]["demo_doctor"]
    _sign_in(page, base, "demo_doctor", password)
    page.wait_for_url("**/patients")
    # 会诊: a sample case from the page
    _nav(page, "会诊")
    page.wait_for_url("**/consult")
    page.get_by_role("link", name="成人胸痛").click()
    assert "胸痛" in page.input_value("#consult-case")
    page.click("#consult-submit")
    page.wait_for_url("**/consult/runs/*")
    red = page.locator("#red-flags .alert-danger").first
    assert red.is_visible() and "120" in red.inner_text()
    first_box = page.locator("#red-flags").bounding_box()
    assert first_box["y"] < page.locator("#differential").bounding_box()["y"]  # red flags first
    assert page.locator("#status").inner_text() == "待医生确认"
    assert page.locator(".page-head .path-tag").inner_text().startswith("专科路径")
    cite = page.locator("#answer-sentences a.cite").first
    target = cite.get_attribute("href")
    cite.click()
    assert page.evaluate("location.hash") == target and page.locator(f"li{target}").is_visible()
    _no_sideways_scroll(page, width)
    SHOTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / f"consult-{width}.png"), full_page=True)
    consult_run = page.url.split("#")[0].rsplit("/", 1)[1]
    # MDT: from a chart at desktop width, a pasted case at phone width
    _nav(page, "MDT")
    page.wait_for_url("**/mdt")
    if width >= 1024:
        page.goto(f"{base}/mdt?patient_id=P0000001")
        assert page.locator("#mdt-preview").is_visible() and page.locator("#mdt-suggested li").count() >= 1
    else:
        page.fill("#mdt-case", AF_CASE)
        page.fill("#mdt-question", "抗凝与镇痛用药安全")
    page.click("#mdt-submit")
    page.wait_for_url("**/mdt/runs/*")
    page.wait_for_selector("#consensus", timeout=60_000)  # the page polled, then showed the result
    team = page.locator("#mdt-team li")
    assert team.count() >= 1
    assert all(li.get_attribute("data-answered") == "1" for li in team.all())
    assert page.locator("#minutes .doc h1").inner_text().startswith("多学科会诊纪要")
    assert page.locator("#consensus tbody tr").count() >= 1
    if width < 1024:
        assert "华法林 与 布洛芬" in page.locator("#conflicts").inner_text()
    assert page.locator("#safety-sentence").is_visible()
    _no_sideways_scroll(page, width)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / f"mdt-{width}.png"), full_page=True)
    with page.expect_download() as caught:
        page.click("#minutes-docx")
    saved = tmp_path / "minutes.docx"
    caught.value.save_as(saved)
    document = docx.Document(io.BytesIO(saved.read_bytes()))
    assert document.paragraphs[0].text == "多学科会诊纪要"
    mdt_run = page.get_attribute("#confirm-link", "href").split("#run-")[1]
    page.click("#confirm-link")
    page.wait_for_url("**/drafts*")
    assert page.locator(f"#run-{consult_run}").count() == 1 and page.locator(f"#run-{mdt_run}").count() == 1
    _sign_out(page)
    page.close()


def test_the_mdt_works_without_javascript(browser: Any, server: dict[str, Any]) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    _sign_in(page, server["base"], "demo_doctor", server["credentials"]["demo_doctor"], start="/mdt")
    page.wait_for_url("**/mdt")
    page.fill("#mdt-case", AF_CASE)
    page.check("input[name=specialties][value=cardiology]")
    page.check("input[name=specialties][value=clinical_pharmacy]")
    page.click("#mdt-submit")
    page.wait_for_url("**/mdt/runs/*")
    page.wait_for_selector("#consensus", timeout=30_000)  # <noscript> meta refresh until done
    opinions = page.locator("#opinions article")
    assert [a.get_attribute("id") for a in opinions.all()] == ["sp-cardiology", "sp-clinical_pharmacy"]
    context.close()


def test_a_session_that_expires_mid_form_keeps_what_was_typed(browser: Any, server: dict[str, Any]) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 900})
    page = context.new_page()
    base, password = server["base"], server["credentials"]["demo_doctor"]
    _sign_in(page, base, "demo_doctor", password, start="/mdt")
    page.wait_for_url("**/mdt")
    typed = AF_CASE + "（会话过期测试）"
    page.fill("#mdt-case", typed)
    page.check("input[name=specialties][value=nephrology]")
    context.clear_cookies()  # the session ends while the doctor is typing
    page.click("#mdt-submit")
    page.wait_for_url("**/login**")
    page.fill("#username", "demo_doctor")
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/mdt")
    assert page.input_value("#mdt-case") == typed
    assert page.is_checked("input[name=specialties][value=nephrology]")
    assert page.locator("#mdt-form-restored").is_visible()
    context.close()


def test_a_double_click_on_consult_makes_one_run(browser: Any, server: dict[str, Any]) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    base, password = server["base"], server["credentials"]["demo_nurse"]
    _sign_in(page, base, "demo_nurse", password, start="/consult")
    page.wait_for_url("**/consult")
    case = "2岁女孩，发热1天，咳嗽，无腹泻（双击测试）"
    page.fill("#consult-case", case)
    page.dblclick("#consult-submit")
    page.wait_for_url("**/consult/runs/*")
    page.goto(f"{base}/drafts")
    assert page.locator("article[id^='run-']", has_text=case).count() == 1
    page.close()


def _axe() -> Any:
    try:
        from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the accessibility check needs axe-playwright-python (dev extras)")
        pytest.skip("the accessibility check needs axe-playwright-python (dev extras)")
    return Axe()


def test_the_pages_are_labelled_keyboard_usable_and_pass_axe(browser: Any, server: dict[str, Any]) -> None:
    axe = _axe()
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    _sign_in(page, server["base"], "demo_doctor", server["credentials"]["demo_doctor"], start="/consult")
    page.wait_for_url("**/consult")
    checked: list[str] = []

    def check() -> None:
        unlabelled = page.evaluate(
            "[...document.querySelectorAll('form input:not([type=hidden]), form textarea, form select')]"
            ".filter(el => !el.labels || el.labels.length === 0).map(el => el.name)"
        )
        assert unlabelled == [], (page.url, unlabelled)
        serious = [v for v in axe.run(page).response["violations"] if v["impact"] in {"serious", "critical"}]
        assert serious == [], (page.url, [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in serious])
        checked.append(page.url)

    check()
    page.focus("#consult-case")
    page.keyboard.type("3岁男孩，发热2天，咳嗽，气促")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "consult-level"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "consult-submit"
    page.keyboard.press("Enter")
    page.wait_for_url("**/consult/runs/*")
    check()
    page.goto(f"{server['base']}/mdt?patient_id=P0000001")
    check()
    page.click("#mdt-submit")
    page.wait_for_selector("#consensus", timeout=60_000)
    check()
    assert len(checked) == 4
    page.close()
