"""The web shell in headless Chromium at phone (390 px) and desktop (1366 px) widths: sign in, search, open a
chart (age, principal diagnosis, lab trends, vitals panels per unit, abnormal labs in red), review a draft
(rendered document, linked citations, editor beside the sources, a confirmation, a session that expires
mid-edit keeps the text, a double click records once); the navigation collapses on a phone, nothing scrolls
sideways, ℃ renders, the skip link works and axe finds no serious or critical violation. Screenshots go to
tests/e2e/screenshots/ for review (docs/web.md shows them)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import axe_serious

pytestmark = pytest.mark.e2e
SHOTS = Path(__file__).with_name("screenshots")
WIDTHS = (390, 1366)


def _login(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/")
    assert "/login" in page.url
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def _no_sideways_scroll(page: Any) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]}px wide in a {widths[1]}px window"


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def _draft(base: str, password: str, question: str) -> str:
    """A pending draft made through the API, as the 智能问答 page would leave one."""
    token = httpx.post(
        f"{base}/api/auth/token", data={"username": "demo_doctor", "password": password}, timeout=30
    ).json()["access_token"]
    answer = httpx.post(
        f"{base}/api/ask",
        json={"question": question},
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["run_id"])


@pytest.mark.parametrize("width", WIDTHS)
def test_doctor_finds_a_diabetic_and_reads_the_chart(
    browser: Any, server: dict[str, Any], width: int
) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})
    _login(page, server["base"], "demo_doctor", server["credentials"]["demo_doctor"])
    page.wait_for_url("**/patients")
    _no_sideways_scroll(page)
    nav_link = page.get_by_role("link", name="待审草稿", exact=True)
    if width < 720:  # the phone layout folds the navigation behind 菜单
        assert not nav_link.is_visible()
        page.click(".nav-toggle-btn")
        assert nav_link.is_visible()
        _no_sideways_scroll(page)
        page.click(".nav-toggle-btn")
    else:
        assert nav_link.is_visible() and not page.locator(".nav-toggle-btn").is_visible()
    assert page.locator(".nav-links a[href='/patients']").get_attribute("aria-current") == "page"
    page.fill("#f-dx", "E11")
    page.click(".search-form button[type=submit]")
    page.wait_for_selector("#results")
    _no_sideways_scroll(page)  # the results table scrolls inside its wrapper
    page.locator("a.patient-link").first.click()
    page.wait_for_selector("#labs")
    assert page.locator("#encounters li").count() >= 1
    assert page.locator("#age").inner_text().endswith("岁")
    assert page.locator("#diagnoses tr[data-role=primary]").count() >= 1
    assert (
        page.locator("#vitals-bp svg circle").count() >= 1
        and page.locator("#vitals-hr svg circle").count() >= 1
    )
    assert "次/分" in page.locator("#vitals-hr figcaption").inner_text()
    assert page.locator("#lab-trends svg.sparkline").count() >= 1
    abnormal = page.locator("#lab-results tr.abnormal")
    assert abnormal.count() >= 1
    row_text = " ".join(abnormal.all_inner_texts())
    assert ("糖化血红蛋白" in row_text or "空腹血糖" in row_text) and "偏高" in row_text
    colour = abnormal.first.locator("td").first.evaluate("el => getComputedStyle(el).color")
    assert colour == "rgb(176, 58, 46)"  # --bad: abnormal values are shown in red
    _no_sideways_scroll(page)
    _shot(page, f"chart-{width}.png")
    assert axe_serious(page) == []
    page.close()


def _ink(page: Any, png: bytes) -> list[int]:
    """Which pixels of a screenshot are dark, decoded by the browser itself (no image library needed)."""
    return list(
        page.evaluate(
            """async (src) => {
                const img = new Image(); img.src = 'data:image/png;base64,' + src; await img.decode();
                const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
                const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
                const d = ctx.getImageData(0, 0, c.width, c.height).data; const dark = [];
                for (let i = 0; i < d.length; i += 4) dark.push(d[i] + d[i + 1] + d[i + 2] < 384 ? 1 : 0);
                return dark; }""",
            base64.b64encode(png).decode(),
        )
    )


def test_degree_celsius_and_the_other_signs_render_with_the_font_stack(
    browser: Any, server: dict[str, Any]
) -> None:
    """ "℃" rendered blank with the old stack (issue 16): each sign must leave ink, and not the ink of a
    character no installed font has (U+E000, private use)."""
    page = browser.new_page(viewport={"width": 800, "height": 600})
    _login(page, server["base"], "demo_doctor", server["credentials"]["demo_doctor"])
    page.wait_for_url("**/patients")
    page.evaluate(
        """() => { for (const [id, text] of [['g-c', '℃'], ['g-pm', '±'], ['g-mu', 'μ'], ['g-ge', '≥'],
                                             ['g-none', '\\ue000']]) {
            const s = document.createElement('span'); s.id = id; s.textContent = text;
            s.style.cssText = 'font-size:64px;display:inline-block;width:80px;height:80px;'
                + 'background:#fff;color:#000';
            document.querySelector('main').prepend(s); } }"""
    )
    missing = _ink(page, page.locator("#g-none").screenshot())
    for glyph in ("g-c", "g-pm", "g-mu", "g-ge"):
        ink = _ink(page, page.locator(f"#{glyph}").screenshot())
        assert sum(ink) > 40, f"{glyph} left no ink"
        assert sum(a != b for a, b in zip(ink, missing, strict=False)) > 40, (
            f"{glyph} looks like a missing glyph"
        )
    page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_doctor_reviews_a_draft_beside_its_sources_and_is_told_what_happened(
    browser: Any, server: dict[str, Any], width: int
) -> None:
    base, password = server["base"], server["credentials"]["demo_doctor"]
    run_id = _draft(base, password, f"高血压怎么治疗？（{width}）")
    context = browser.new_context(viewport={"width": width, "height": 1000})
    page = context.new_page()
    _login(page, base, "demo_doctor", password)
    page.wait_for_url("**/patients")
    page.goto(f"{base}/drafts")
    article = page.locator(f"#run-{run_id}")
    document = article.locator(".doc")
    assert "**" not in document.inner_text() and "待医生确认" in article.inner_text()
    cite = document.locator("a.cite").first
    target = cite.get_attribute("href")
    cite.click()
    assert page.url.endswith(target)
    assert page.locator(f"{target}").evaluate("el => el.matches(':target')")
    sources, draft = article.locator("section.draft-sources"), article.locator("section.draft-text")
    s_box, d_box = sources.bounding_box(), draft.bounding_box()
    if width < 720:  # stacked on a phone: the draft first, its sources below
        assert s_box["y"] >= d_box["y"] + d_box["height"] - 1
    else:  # side by side: sources | draft
        assert abs(d_box["y"] - s_box["y"]) < 2 and d_box["x"] > s_box["x"] + s_box["width"] - 1
    article.locator("details.editor summary").click()
    editor = article.locator("textarea[name=edited]")
    assert editor.bounding_box()["height"] >= 250  # a large editor, not a tiny field
    typed = "## 修改稿\n\n建议生活方式干预并启动降压药物治疗。"
    editor.fill(typed)
    _no_sideways_scroll(page)
    _shot(page, f"drafts-{width}.png")
    assert axe_serious(page) == []

    context.clear_cookies()  # the session expires while the doctor edits
    article.locator("form:has(textarea) button[type=submit]").click()
    page.wait_for_url("**/login**")
    page.fill("#username", "demo_doctor")
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/drafts#run-{run_id}")
    restored = page.locator(f"#run-{run_id} textarea[name=edited]")
    assert restored.input_value() == typed and page.locator(f"#run-{run_id} .restored").is_visible()
    page.locator(f"#run-{run_id} form:has(textarea) button[type=submit]").click()
    page.wait_for_url("**/drafts?done=*")
    done = page.locator("#done.alert-ok")
    assert "已修改并采纳问答草稿" in done.inner_text()
    assert page.locator(f"#run-{run_id}").count() == 0
    assert page.evaluate(f"sessionStorage.getItem('mf-draft:{run_id}:edited')") is None
    _shot(page, f"drafts-done-{width}.png")
    context.close()


def test_a_double_click_on_accept_records_one_review(browser: Any, server: dict[str, Any]) -> None:
    base, password = server["base"], server["credentials"]["demo_doctor"]
    run_id = _draft(base, password, "痛风急性发作怎么治疗？（双击）")
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    _login(page, base, "demo_doctor", password)
    page.wait_for_url("**/patients")
    page.goto(f"{base}/drafts#run-{run_id}")
    page.locator(f"#run-{run_id} form:has(input[value=accept]) button").dblclick()
    page.wait_for_url("**/drafts?done=*")
    assert "已采纳问答草稿" in page.locator("#done").inner_text()
    token = httpx.post(
        f"{base}/api/auth/token", data={"username": "demo_doctor", "password": password}, timeout=30
    ).json()["access_token"]
    entries = httpx.get(
        f"{base}/api/feedback", params={"run_id": run_id}, headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert [e["action"] for e in entries] == ["accept"]
    page.close()


def test_the_skip_link_is_the_first_stop_and_moves_focus_to_the_content(
    browser: Any, server: dict[str, Any]
) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    _login(page, server["base"], "demo_doctor", server["credentials"]["demo_doctor"])
    page.wait_for_url("**/patients")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.locator(".skip-link").bounding_box()["y"] >= 0  # shown when focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.close()


def test_patient_sees_only_their_own_chart(browser: Any, server: dict[str, Any]) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 800})
    _login(page, server["base"], "demo_patient", server["credentials"]["demo_patient"])
    page.wait_for_url("**/patients/P0000001")
    assert page.locator("#demographics h1").inner_text().strip()
    _no_sideways_scroll(page)
    page.goto(f"{server['base']}/patients/P0000002")
    assert "只能访问本人病历" in page.content()
    page.close()


def test_wrong_password_stays_on_the_login_page(browser: Any, server: dict[str, Any]) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 800})
    _login(page, server["base"], "demo_nurse", "not-the-password")
    assert page.locator("[role=alert]").inner_text().startswith("用户名或密码错误")
    _no_sideways_scroll(page)
    assert axe_serious(page) == []
    page.close()
