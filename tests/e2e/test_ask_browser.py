"""智能问答 (/ask) in headless Chromium at phone (390 px) and desktop (1366 px) width: a doctor signs in,
opens the page from the navigation, picks a sample question, asks, follows a citation to its highlighted
evidence, finds the draft in 待审草稿 and signs out; a session that expires mid-question keeps what was
typed; a double click makes one run; and the time to the first useful answer from a fresh data folder
(``db upgrade`` → ``demo seed`` → ``serve`` → signed in → answered, as ``make run`` does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import _free_port

pytestmark = pytest.mark.e2e
SHOTS = Path(__file__).with_name("screenshots")
QUESTION = "痛风急性发作怎么治疗？"


def _sign_in(page: Any, base: str, username: str, password: str, start: str = "/ask") -> None:
    page.goto(f"{base}{start}")
    assert "/login" in page.url
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def _sign_out(page: Any) -> None:
    toggle = page.locator(".nav-toggle-btn")
    if toggle.is_visible():
        toggle.click()
    page.click("form[action='/logout'] button[type=submit]")
    page.wait_for_url("**/login")


@pytest.mark.parametrize("width", [390, 1366])
def test_a_doctor_asks_follows_a_citation_and_finds_the_draft(
    browser: Any, server: dict[str, Any], width: int
) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})
    base, password = server["base"], server["credentials"]["demo_doctor"]
    _sign_in(page, base, "demo_doctor", password, start="/")
    page.wait_for_url("**/patients")
    toggle = page.locator(".nav-toggle-btn")
    if toggle.is_visible():  # the phone layout folds the navigation behind 菜单
        toggle.click()
    page.get_by_role("link", name="智能问答").click()
    page.wait_for_url("**/ask")
    page.click("a.example >> nth=0")  # fills the form; the page does not leave
    assert page.input_value("#question") == QUESTION and page.url.endswith("/ask")
    page.click("#ask-submit")
    page.wait_for_selector("#ask-answer")
    assert page.locator("#ask-answer .path-tag").first.inner_text().startswith("专科路径")
    assert page.locator("#ask-status").inner_text() == "待医生确认"
    assert page.locator("#safety").is_visible()
    run_id = page.locator("#ask-answer").get_attribute("data-run")
    assert run_id and page.url.endswith(f"/ask/runs/{run_id}")  # a reload shows the stored answer
    cite = page.locator("#answer-sentences a.cite").first
    target = cite.get_attribute("href")
    cite.click()
    assert page.evaluate("location.hash") == target
    item = page.locator(f"li{target}")
    assert item.locator("mark").count() >= 1 and item.is_visible()
    outline = item.evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline == "solid"  # the design system marks the evidence item the link went to
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px at {width}px"
    SHOTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / f"ask-{width}.png"), full_page=True)
    page.click("#review-link")
    page.wait_for_url("**/drafts*")
    assert page.locator(f"#run-{run_id}").count() == 1
    _sign_out(page)
    page.close()


def test_a_session_that_expires_mid_question_keeps_what_was_typed(
    browser: Any, server: dict[str, Any]
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 900})
    page = context.new_page()
    base, password = server["base"], server["credentials"]["demo_doctor"]
    _sign_in(page, base, "demo_doctor", password)
    page.wait_for_url("**/ask")
    typed = "二甲双胍的禁忌证有哪些？（会话过期测试）"
    page.fill("#question", typed)
    context.clear_cookies()  # the session ends while the doctor is typing
    page.click("#ask-submit")
    page.wait_for_url("**/login**")
    page.fill("#username", "demo_doctor")
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/ask")
    assert page.input_value("#question") == typed
    assert page.locator("#draft-restored").is_visible()
    context.close()


def test_a_double_click_on_submit_makes_one_run(browser: Any, server: dict[str, Any]) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    base, password = server["base"], server["credentials"]["demo_nurse"]
    _sign_in(page, base, "demo_nurse", password)
    page.wait_for_url("**/ask")
    page.fill("#question", "痛风的就诊科室？（双击测试）")
    page.dblclick("#ask-submit")
    page.wait_for_selector("#ask-answer")
    page.goto(f"{base}/drafts")
    assert page.get_by_text("痛风的就诊科室？（双击测试）").count() == 1
    page.close()


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``make run`` from nothing: migrate (and install the shipped packs), seed the demo, serve."""
    folder = tmp_path_factory.mktemp("fresh")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDFUSION_")}
    env["MEDFUSION_DATA_DIR"] = str(folder / "var")
    started = time.monotonic()
    for step in (["db", "upgrade"], ["demo", "seed"]):
        done = subprocess.run(
            [sys.executable, "-m", "medfusion", *step],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    seeded = time.monotonic()
    port = _free_port()
    with (folder / "server.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "medfusion", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            else:
                pytest.fail("server did not come up: " + (folder / "server.log").read_text())
            credentials = json.loads((folder / "var" / "demo-credentials.json").read_text())
            yield {
                "base": base,
                "credentials": credentials,
                "started": started,
                "seeded": seeded,
                "up": time.monotonic(),
            }
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def test_time_to_first_useful_answer_from_a_fresh_install(browser: Any, fresh_server: dict[str, Any]) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    _sign_in(page, fresh_server["base"], "demo_doctor", fresh_server["credentials"]["demo_doctor"])
    page.wait_for_url("**/ask")
    page.fill("#question", QUESTION)
    page.click("#ask-submit")
    page.wait_for_selector("#ask-answer #answer-sentences a.cite", timeout=120_000)
    answered = time.monotonic()
    figures = {
        "install_to_answer_s": round(answered - fresh_server["started"], 2),
        "db_upgrade_and_seed_s": round(fresh_server["seeded"] - fresh_server["started"], 2),
        "serve_to_healthy_s": round(fresh_server["up"] - fresh_server["seeded"], 2),
        "healthy_to_answer_s": round(answered - fresh_server["up"], 2),
    }
    SHOTS.mkdir(exist_ok=True)
    (SHOTS / "ask-first-answer.json").write_text(json.dumps(figures, indent=1) + "\n")
    print("time to first useful answer:", figures)
    assert page.locator("#evidence-list li mark").count() >= 1
    page.close()


def _axe() -> Any:
    try:
        from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the accessibility check needs axe-playwright-python (dev extras)")
        pytest.skip("the accessibility check needs axe-playwright-python (dev extras)")
    return Axe()


def test_the_page_is_usable_by_keyboard_and_passes_axe(browser: Any, server: dict[str, Any]) -> None:
    axe = _axe()
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    _sign_in(page, server["base"], "demo_doctor", server["credentials"]["demo_doctor"])
    page.wait_for_url("**/ask")
    unlabelled = page.evaluate(
        "[...document.querySelectorAll('#ask-form input:not([type=hidden]), #ask-form textarea, "
        "#ask-form select')].filter(el => !el.labels || el.labels.length === 0).map(el => el.name)"
    )
    assert unlabelled == []
    page.focus("#question")
    page.keyboard.type("发热、咳嗽、咽痛三天，可能是什么病？")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "reasoning"
    page.select_option("#reasoning", "tot")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "ask-submit"
    page.keyboard.press("Enter")
    page.wait_for_selector("#ask-answer #differential")
    serious = [v for v in axe.run(page).response["violations"] if v["impact"] in {"serious", "critical"}]
    assert serious == [], [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in serious]
    page.close()
