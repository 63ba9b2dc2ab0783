"""Every role's main path in headless Chromium at phone (390 px) and desktop (1366 px) width (issue 16): each
demo account (as ``make run`` seeds them) signs in at /login, lands on the page made for its role, does its
main task — with AI where the role has one — and signs out. On the landing page axe-core must find no serious
or critical violation; no page along the way scrolls sideways (``scrollWidth <= innerWidth``). Screenshots:
tests/e2e/screenshots/role-<role>-<width>.png. Plus a keyboard pass over /login and /ask: Tab reaches the
fields and the submit button in order, each with a visible focus ring.

One server (conftest ``server``) and one Chromium (conftest ``browser``) for the module; a fresh browser
context (its own cookies) per test."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from medfusion.synth import generate_population
from tests.e2e.conftest import DEMO_SIZE, axe_serious

pytestmark = pytest.mark.e2e
WIDTHS = (390, 1366)
SHOTS = Path(__file__).with_name("screenshots")
DEMO_SEED = 20250630  # medfusion.cli.demo_cmd.DEMO_SEED: the population the server was seeded with

# role → (where it lands, the navigation entry marked aria-current there, the landing page's heading)
LANDINGS: dict[str, tuple[str, str, str]] = {
    "doctor": ("/patients", "患者检索", "患者检索"),
    "nurse": ("/patients", "患者检索", "患者检索"),
    "pharmacist": ("/pharmacy", "用药审核", "用药审核"),
    "manager": ("/evaluations", "验证中心", "验证中心"),
    "public_health": ("/patients", "患者检索", "患者检索"),
    "patient": ("/patients/{own}", "我的病历", ""),  # the heading is the patient's own name
    "auditor": ("/audit", "审计日志", "审计日志"),
    "admin": ("/admin", "系统管理", "系统管理"),
}


def _token(base: str, username: str, password: str) -> str:
    answer = httpx.post(
        f"{base}/api/auth/token", data={"username": username, "password": password}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _api(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120)


@pytest.fixture(scope="module")
def own_record(server: dict[str, Any]) -> str:
    """The record demo_patient's account is linked to (the seeding links the first patient)."""
    base = server["base"]
    with _api(base, _token(base, "demo_admin", server["credentials"]["demo_admin"])) as admin:
        accounts = {a["username"]: a for a in admin.get("/api/users").json()}
    return str(accounts["demo_patient"]["patient_id"])


@pytest.fixture(scope="module")
def confirmed_minutes(server: dict[str, Any], own_record: str) -> str:
    """A doctor holds an MDT on the patient's record and confirms its minutes (they become a chart note);
    a second MDT stays a pending draft. Returns the confirmed run's id."""
    base = server["base"]
    with _api(base, _token(base, "demo_doctor", server["credentials"]["demo_doctor"])) as doctor:
        runs = []
        for _ in range(2):
            held = doctor.post("/api/mdt", json={"patient_id": own_record})
            assert held.status_code == 200, held.text
            runs.append(str(held.json()["run_id"]))
        accepted = doctor.post("/api/feedback", json={"run_id": runs[0], "action": "accept"})
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["note_id"]
    return runs[0]


@pytest.fixture
def context(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    width = request.node.callspec.params["width"]
    ctx = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
    yield ctx
    ctx.close()


def _no_sideways_scroll(page: Any) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{page.url} is {widths[0]}px wide in a {widths[1]}px window"


def _open_nav(page: Any) -> None:
    toggle = page.locator(".nav-toggle-btn")
    if toggle.is_visible():  # the phone layout folds the navigation behind 菜单
        toggle.click()


def _go(page: Any, title: str) -> None:
    """Follow a navigation entry the way a user would (unfolding the menu on a phone)."""
    _open_nav(page)
    page.locator(".nav-links").get_by_role("link", name=title, exact=True).click()


def _enter(context: Any, server: dict[str, Any], role: str, own: str) -> Any:
    """Sign in as the role's demo account, check where it landed and the landing page's accessibility."""
    page = context.new_page()
    base = server["base"]
    page.goto(f"{base}/")
    assert "/login" in page.url
    page.fill("#username", f"demo_{role}")
    page.fill("#password", server["credentials"][f"demo_{role}"])
    page.click("button[type=submit]")
    path, nav, heading = LANDINGS[role]
    path = path.format(own=own)
    page.wait_for_url(f"{base}{path}")
    assert page.locator(".nav-links a[aria-current=page]").inner_text() == nav
    assert page.locator(".who-user").inner_text() == f"demo_{role}"
    if heading:
        assert page.locator("main h1").first.inner_text().strip() == heading
    _no_sideways_scroll(page)
    assert axe_serious(page) == [], f"axe on {role}'s landing page {path}"
    return page


def _finish(page: Any, server: dict[str, Any], role: str, width: int) -> None:
    """Screenshot where the main task ended, then sign out: the session is gone afterwards."""
    _no_sideways_scroll(page)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"role-{role}-{width}.png"), full_page=True)
    _open_nav(page)
    page.click("form[action='/logout'] button[type=submit]")
    page.wait_for_url("**/login")
    page.goto(f"{server['base']}/")
    assert "/login" in page.url


def _ask(page: Any, question: str) -> None:
    """Ask on /ask and check the output contract is on the page: path, status, safety sentence."""
    page.fill("#question", question)
    page.click("#ask-submit")
    page.wait_for_selector("#ask-answer", timeout=60_000)
    assert page.locator("#ask-answer .path-tag").count() >= 1
    assert page.locator("#ask-status").inner_text() == "待医生确认"
    assert page.locator("#safety").is_visible()


@pytest.mark.parametrize("width", WIDTHS)
def test_doctor_asks_and_opens_a_citation(context: Any, server: dict[str, Any], width: int) -> None:
    page = _enter(context, server, "doctor", "")
    _go(page, "智能问答")
    page.wait_for_url("**/ask")
    _ask(page, f"痛风急性发作怎么治疗？（{width}）")
    cite = page.locator("#answer-sentences a.cite").first
    target = cite.get_attribute("href")
    assert target and target.startswith("#ev-")
    cite.click()
    assert page.evaluate("location.hash") == target
    evidence = page.locator(f"#evidence-list li{target}")
    assert evidence.is_visible() and evidence.evaluate("el => el.matches(':target')")
    page.evaluate("window.scrollTo(0, 0)")
    _finish(page, server, "doctor", width)


@pytest.mark.parametrize("width", WIDTHS)
def test_nurse_opens_a_chart_its_vitals_and_asks_with_it(
    context: Any, server: dict[str, Any], width: int
) -> None:
    page = _enter(context, server, "nurse", "")
    page.fill("#f-dx", "I10")
    page.click(".search-form button[type=submit]")
    page.wait_for_selector("#results")
    page.locator("a.patient-link").first.click()
    page.wait_for_selector("#vitals")
    patient_id = page.url.rsplit("/", 1)[1]
    # the vitals chart: one panel per unit, each with its axis, unit and a time axis
    assert page.locator("#vitals-bp svg circle").count() >= 1
    assert "mmHg" in page.locator("#vitals-bp").inner_text()
    assert "次/分" in page.locator("#vitals-hr figcaption").inner_text()
    assert page.locator("#vitals svg title").count() >= 1
    page.locator("#vitals").scroll_into_view_if_needed()
    _no_sideways_scroll(page)
    # AI on the chart: ask with the chart as context
    page.locator("#ai-actions a[href^='/ask']").click()
    page.wait_for_url(f"**/ask?patient_id={patient_id}")
    assert page.locator("#patient-context").count() == 1
    _ask(page, "高血压患者的降压目标是多少？")
    _finish(page, server, "nurse", width)


@pytest.mark.parametrize("width", WIDTHS)
def test_pharmacist_reviews_medications_and_opens_the_charts_list(
    context: Any, server: dict[str, Any], width: int
) -> None:
    page = _enter(context, server, "pharmacist", "")
    page.fill("#ph-dx", "E11")
    page.click("form[action='/pharmacy'] button[type=submit]")
    page.wait_for_selector("#ph-results")
    page.locator("a.review-link").first.click()
    page.wait_for_selector("#review")
    review = page.locator("#active-meds tbody tr").all_inner_texts()
    assert page.locator("#drug-allergies").count() == 1
    page.get_by_role("link", name="打开完整病历").click()
    page.wait_for_url("**#medications")
    medications = page.locator("#medications")
    assert medications.is_visible()
    chart_drugs = medications.inner_text()
    assert all(row.split("\t")[0] in chart_drugs for row in review)  # the same drugs on the chart
    _no_sideways_scroll(page)
    # AI for the pharmacist: a drug question with this chart as context
    page.locator("#ai-actions a[href^='/ask']").click()
    page.wait_for_url("**/ask?patient_id=*")
    _ask(page, "二甲双胍的禁忌证有哪些？")
    _finish(page, server, "pharmacist", width)


@pytest.mark.parametrize("width", WIDTHS)
def test_manager_starts_a_runnable_validation(context: Any, server: dict[str, Any], width: int) -> None:
    page = _enter(context, server, "manager", "")
    assert not page.locator("#pair option:checked").is_disabled()  # the default can run
    runnable = page.locator("#pair option:not([disabled])")
    assert runnable.count() >= 1
    page.select_option("#pair", "deid:deid")
    page.fill("#limit", "2")
    before = page.locator("#runs tbody tr").count()
    page.click("#start-eval button[type=submit]")
    page.wait_for_url("**/evaluations")
    rows = page.locator("#runs tbody tr")
    assert rows.count() == before + 1
    first = rows.first.inner_text()
    assert "demo_manager" in first and "deid" in first and re.search(r"\d\d:\d\d(:\d\d)? CST", first)
    # while a run is going the page refreshes itself every 5 s (no reload from here: it would race that)
    report = page.locator("#runs tbody tr").first.locator("a", has_text="查看报告")
    report.wait_for(timeout=90_000)
    report.click()
    page.wait_for_selector("#report")
    _finish(page, server, "manager", width)


@pytest.mark.parametrize("width", WIDTHS)
def test_public_health_searches_and_sees_de_identified_rows(
    context: Any, server: dict[str, Any], width: int
) -> None:
    page = _enter(context, server, "public_health", "")
    page.fill("#f-dx", "I10")
    page.click(".search-form button[type=submit]")
    page.wait_for_selector("#results")
    rows = page.locator("#results tbody tr")
    assert rows.count() >= 1
    table = page.locator("#results").inner_text()
    for chart in generate_population(DEMO_SIZE, seed=DEMO_SEED):
        p = chart.patient
        birth = p.birth_date.isoformat() if p.birth_date else None
        for secret in (p.name, p.id_number, p.phone, birth):
            assert not secret or secret not in table, "an identifier in the public-health list"
    for cells in (r.split("\t") for r in rows.all_inner_texts()):
        name, birth = cells[1].strip(), cells[3].strip()
        assert re.fullmatch(r".\*+", name), f"name shown as {name!r}"
        assert re.fullmatch(r"\d{4}", birth) or birth == "未登记", f"birth date shown as {birth!r}"
    _finish(page, server, "public_health", width)


@pytest.mark.parametrize("width", WIDTHS)
def test_patient_reads_their_record_and_the_minutes_addressed_to_them(
    context: Any, server: dict[str, Any], own_record: str, confirmed_minutes: str, width: int
) -> None:
    page = _enter(context, server, "patient", own_record)
    assert page.locator("#demographics h1").inner_text().strip()
    assert page.locator("#labs").is_visible() and page.locator("#lab-results tbody tr").count() >= 1
    # the MDT minutes a doctor confirmed are in the record; the unconfirmed MDT draft is not
    minutes = page.locator("#notes details.note", has_text="多学科会诊纪要")
    assert minutes.count() == 1
    assert "demo_doctor" in minutes.locator("summary").inner_text()
    if not minutes.evaluate("el => el.open"):
        minutes.locator("summary").click()
    assert minutes.locator(".doc h1").count() == 1 and "**" not in minutes.inner_text()  # a document
    assert page.locator(".nav-links a[href='/drafts']").count() == 0  # a patient reviews no drafts
    page.locator("#notes").scroll_into_view_if_needed()
    _no_sideways_scroll(page)
    _finish(page, server, "patient", width)
    # someone else's record stays closed (signed in again: the session above ended)
    page.fill("#username", "demo_patient")
    page.fill("#password", server["credentials"]["demo_patient"])
    page.click("button[type=submit]")
    page.wait_for_url(f"**/patients/{own_record}")
    other = "P0000002" if own_record != "P0000002" else "P0000003"
    page.goto(f"{server['base']}/patients/{other}")
    assert "只能访问本人病历" in page.content()


@pytest.mark.parametrize("width", WIDTHS)
def test_auditor_filters_the_log_and_exports_csv(context: Any, server: dict[str, Any], width: int) -> None:
    page = _enter(context, server, "auditor", "")
    page.fill("#f-action", "auth.login")
    page.select_option("#f-outcome", "success")
    page.click("#audit-filters button[type=submit]")
    page.wait_for_url("**/audit?*")
    times = page.locator("#entries time").all_inner_texts()
    assert times and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CST", t) for t in times)
    assert set(page.locator("#entries td.mono:nth-child(5)").all_inner_texts()) == {"auth.login"}
    with page.expect_download() as download:
        page.click("#export")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert (
        rows and {r["action"] for r in rows} == {"auth.login"} and {r["outcome"] for r in rows} == {"success"}
    )
    assert "demo_auditor" in {r["actor"] for r in rows}  # this very sign-in is in the export
    _finish(page, server, "auditor", width)


@pytest.mark.parametrize("width", WIDTHS)
def test_admin_disables_and_re_enables_a_user(context: Any, server: dict[str, Any], width: int) -> None:
    base = server["base"]
    name, password = f"e2e_nurse_{width}", "nurse-pass-1"
    with _api(base, _token(base, "demo_admin", server["credentials"]["demo_admin"])) as admin:
        made = admin.post("/api/users", json={"username": name, "password": password, "role": "nurse"})
        assert made.status_code == 201, made.text
    _token(base, name, password)  # the new account works
    page = _enter(context, server, "admin", "")
    page.on("dialog", lambda dialog: dialog.accept())  # 停用 asks for confirmation
    row = page.locator(f"#users tr[data-user='{name}']")
    assert "启用" in row.locator("td").nth(2).inner_text()
    row.locator("summary").click()
    row.get_by_role("button", name="停用").click()
    page.wait_for_url("**/admin?done=disable*")
    assert name in page.locator("#notice").inner_text()
    assert "已停用" in row.locator("td").nth(2).inner_text()
    refused = httpx.post(f"{base}/api/auth/token", data={"username": name, "password": password}, timeout=30)
    assert refused.status_code in {401, 403}, refused.text
    row.locator("summary").click()
    row.get_by_role("button", name="启用").click()
    page.wait_for_url("**/admin?done=enable*")
    assert name in page.locator("#notice").inner_text()
    assert "已停用" not in row.locator("td").nth(2).inner_text()
    _token(base, name, password)  # signs in again
    _finish(page, server, "admin", width)


def _tab_to(page: Any, element_id: str, limit: int = 25) -> list[str]:
    """Press Tab until the element has focus; return the ids (or tag names) focused on the way."""
    seen: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        here = page.evaluate("document.activeElement.id || document.activeElement.tagName.toLowerCase()")
        seen.append(here)
        if here == element_id:
            return seen
    raise AssertionError(f"Tab never reached #{element_id}; went through {seen}")


def _focus_ring_visible(page: Any) -> bool:
    """The focused element matches :focus-visible and draws an outline or a box shadow."""
    return bool(
        page.evaluate(
            """() => { const el = document.activeElement; const s = getComputedStyle(el);
                const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
                return el.matches(':focus-visible') && (outline || s.boxShadow !== 'none'); }"""
        )
    )


def test_login_and_ask_work_by_keyboard_with_a_visible_focus(browser: Any, server: dict[str, Any]) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(f"{server['base']}/login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"  # the first stop
    _tab_to(page, "username")
    assert _focus_ring_visible(page)
    page.keyboard.type("demo_doctor")
    assert _tab_to(page, "password") == ["password"]
    assert _focus_ring_visible(page)
    page.keyboard.type(server["credentials"]["demo_doctor"])
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.type") == "submit" and _focus_ring_visible(page)
    page.keyboard.press("Enter")
    page.wait_for_url("**/patients")
    page.goto(f"{server['base']}/ask")
    _tab_to(page, "question")
    assert _focus_ring_visible(page)
    page.keyboard.type("高血压的诊断标准是什么？")
    assert _tab_to(page, "reasoning") == ["reasoning"] and _focus_ring_visible(page)
    assert _tab_to(page, "ask-submit") == ["ask-submit"] and _focus_ring_visible(page)
    page.keyboard.press("Enter")
    page.wait_for_selector("#ask-answer", timeout=60_000)
    assert page.locator("#ask-status").inner_text() == "待医生确认"
    page.close()
