"""知识库 (/knowledge) in headless Chromium at phone (390 px) and desktop (1366 px) width: an administrator
the page from the navigation, sees the packs with their review status, uploads a guideline, watches it ingest
and embed, reads its chunks, finds it by search with the matched span marked, follows the citation to the
chunk, removes it after the confirmation step and signs out. Also: a wrong type or an oversized file is
refused in the browser before anything is sent; a session that expires mid-form keeps the typed fields; a
double click uploads once; a doctor may search but not upload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import axe_serious

pytestmark = pytest.mark.e2e
SHOTS = Path(__file__).with_name("screenshots")
GUIDE = """# 社区高血压随访规范
## 随访频率
血压达标者每3个月随访一次；未达标者2周内复诊，调整降压药物。
## 家庭血压监测
每日早晚各测量一次，测前静坐5分钟，连续7天，记录血压日记。
"""


def _sign_in(page: Any, base: str, username: str, password: str, start: str = "/knowledge") -> None:
    page.goto(f"{base}{start}")
    assert "/login" in page.url
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def _menu(page: Any) -> None:
    toggle = page.locator(".nav-toggle-btn")
    if toggle.is_visible():  # the phone layout folds the navigation behind 菜单
        toggle.click()


def _sign_out(page: Any) -> None:
    _menu(page)
    page.click("form[action='/logout'] button[type=submit]")
    page.wait_for_url("**/login")


def _no_sideways_scroll(page: Any, width: int) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px at {width}px"


@pytest.mark.parametrize("width", [390, 1366])
def test_an_administrator_uploads_searches_reads_and_removes_a_guideline(
    browser: Any, server: dict[str, Any], width: int, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})
    base, password = server["base"], server["credentials"]["demo_admin"]
    _sign_in(page, base, "demo_admin", password, start="/")
    page.wait_for_load_state()
    _menu(page)
    page.get_by_role("link", name="知识库").click()
    page.wait_for_url("**/knowledge")
    packs = page.locator("#packs")
    assert packs.locator("text=starter-diseases").count() == 1
    assert packs.locator(".badge", has_text="待临床医生审核").count() >= 1
    guide = tmp_path / f"htn-follow-up-{width}.md"
    guide.write_text(GUIDE, encoding="utf-8")
    page.set_input_files("#kb-file", str(guide))
    page.fill("#kb-publisher", "社区卫生服务中心")
    page.select_option("#kb-type", "hospital_sop")
    page.click("#upload-submit")
    page.wait_for_url("**/knowledge/tasks/*")
    # the task page follows the background work (polling) until it is done, then shows the outcome
    page.wait_for_selector(".alert-ok >> text=文档已导入知识库", timeout=120_000)
    assert page.locator("[data-role=state]").inner_text() == "已完成"
    assert page.locator("progress[data-role=bar]").get_attribute("value") == "1"
    page.click("text=查看文档与片段")
    page.wait_for_selector("#chunks")
    assert page.locator("li.kb-chunk").count() == 2
    assert page.locator("li.kb-chunk .badge-ok", has_text="已向量化").count() == 2
    page.goto(f"{base}/knowledge")
    row = page.locator("#documents tr", has_text="社区高血压随访规范")
    assert row.count() == 1 and "demo_admin" in row.inner_text()
    _no_sideways_scroll(page, width)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"knowledge-{width}.png"), full_page=True)
    violations = axe_serious(page)
    assert not violations, violations

    page.fill("#kb-q", "血压日记 静坐")
    page.click(".kb-quick-search button[type=submit]")
    page.wait_for_url("**/knowledge/search?*")
    hit = page.locator("li.kb-hit", has_text="社区高血压随访规范").first
    assert hit.locator("mark", has_text="血压日记").count() >= 1
    assert "upload:" in hit.locator(".kb-hit-source").inner_text()
    assert "向量" in hit.locator(".kb-hit-score").inner_text()
    _no_sideways_scroll(page, width)
    page.screenshot(path=str(SHOTS / f"knowledge-search-{width}.png"), full_page=True)
    violations = axe_serious(page)
    assert not violations, violations
    hit.get_by_role("link", name="在原文中查看").click()
    page.wait_for_selector("#chunks")
    target = page.evaluate("location.hash")
    assert target.startswith("#c-")
    chunk = page.locator(f"li{target}")
    assert "血压日记" in chunk.inner_text()
    assert (
        chunk.evaluate("el => getComputedStyle(el).outlineStyle") == "solid"
    )  # :target marks the cited chunk

    page.click("text=删除文档")
    page.wait_for_selector("text=确认删除")
    assert "不能撤销" in page.locator(".alert-warn").inner_text()
    page.click("button:has-text('确认删除')")
    page.wait_for_url("**/knowledge?removed=*")
    assert "已删除文档「社区高血压随访规范」" in page.locator(".alert-ok").inner_text()
    assert page.locator("#documents tr", has_text="社区高血压随访规范").count() == 0
    _sign_out(page)
    page.close()


def test_a_wrong_type_or_an_oversized_file_is_refused_before_anything_is_sent(
    browser: Any, server: dict[str, Any], tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    sent: list[str] = []
    page.on(
        "request", lambda r: sent.append(r.url) if r.method == "POST" and "/knowledge/" in r.url else None
    )
    _sign_in(page, server["base"], "demo_admin", server["credentials"]["demo_admin"])
    page.wait_for_url("**/knowledge")
    exe = tmp_path / "setup.exe"
    exe.write_bytes(b"MZ" * 100)
    page.set_input_files("#kb-file", str(exe))
    check = page.locator("#upload-check")
    assert check.is_visible() and "不支持的文件类型 .exe" in check.inner_text()
    assert check.get_attribute("role") == "alert"
    page.click("#upload-submit")
    big = tmp_path / "guideline.pdf"
    with big.open("wb") as fh:  # sparse: 201 MB on paper, nothing on disk
        fh.truncate(201 * 1024 * 1024)
    page.set_input_files("#kb-file", str(big))
    assert "超过上传上限 200 MB" in check.inner_text()
    page.click("#upload-submit")
    assert page.url.endswith("/knowledge") and sent == []
    page.close()


def test_a_session_that_expires_mid_form_keeps_the_typed_fields(
    browser: Any, server: dict[str, Any], tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 900})
    page = context.new_page()
    base, password = server["base"], server["credentials"]["demo_admin"]
    _sign_in(page, base, "demo_admin", password)
    page.wait_for_url("**/knowledge")
    guide = tmp_path / "expired.md"
    guide.write_text(GUIDE, encoding="utf-8")
    page.set_input_files("#kb-file", str(guide))
    page.fill("#kb-publisher", "国家心血管病中心")
    page.fill("#kb-department", "心内科")
    page.select_option("#kb-authority", "循证诊疗")
    context.clear_cookies()  # the session ends while the form is being filled in
    page.click("#upload-submit")
    page.wait_for_url("**/login?next=**")
    page.fill("#username", "demo_admin")
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/knowledge")
    assert page.input_value("#kb-publisher") == "国家心血管病中心"
    assert page.input_value("#kb-department") == "心内科"
    assert page.input_value("#kb-authority") == "循证诊疗"
    assert page.locator("#draft-note").is_visible()
    assert page.locator(".kb-task", has_text="expired.md").count() == 0  # nothing was stored meanwhile
    context.close()


def test_a_double_click_uploads_once_and_a_doctor_may_search_but_not_upload(
    browser: Any, server: dict[str, Any], tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    base = server["base"]
    _sign_in(page, base, "demo_admin", server["credentials"]["demo_admin"])
    page.wait_for_url("**/knowledge")
    guide = tmp_path / "double.md"
    guide.write_text(GUIDE.replace("社区高血压随访规范", "双击测试规范"), encoding="utf-8")
    page.set_input_files("#kb-file", str(guide))
    page.dblclick("#upload-submit")
    page.wait_for_url("**/knowledge/tasks/*")
    page.wait_for_selector(".alert-ok", timeout=120_000)
    tasks = page.request.get(f"{base}/knowledge/tasks.json").json()["tasks"]
    assert [t["filename"] for t in tasks].count("double.md") == 1
    _sign_out(page)
    _sign_in(page, base, "demo_doctor", server["credentials"]["demo_doctor"])
    page.wait_for_url("**/knowledge")
    assert page.locator("#upload-form").count() == 0
    page.fill("#kb-q", "双击测试规范 随访")
    page.click(".kb-quick-search button[type=submit]")
    assert page.locator("li.kb-hit", has_text="双击测试规范").count() >= 1
    page.close()
