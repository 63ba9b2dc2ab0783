"""Administration, the audit log, the validation center and the pharmacist's page in headless Chromium at
phone (390 px) and desktop (1366 px) widths (issue 16): each role signs in, lands on its own page, does its
main task and signs out. An administrator adds a user (a double click adds one; a session that expires
mid-form keeps what was typed), resets a password — and that user must choose a new one at sign-in; an
auditor filters the log and exports it; a manager starts a validation run that can run now and reads its
report inside the app; a pharmacist finds a patient and reviews the medications. Nothing scrolls sideways;
axe finds no serious or critical violation. Screenshots: tests/e2e/screenshots/<page>-<width>.png."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import axe_serious

pytestmark = pytest.mark.e2e
WIDTHS = (390, 1366)
SHOTS = Path(__file__).with_name("screenshots")


def _sign_in(page: Any, base: str, username: str, password: str, start: str = "/") -> None:
    page.goto(f"{base}{start}")
    assert "/login" in page.url
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def _sign_out(page: Any) -> None:
    toggle = page.locator(".nav-toggle-btn")
    if toggle.is_visible():  # the phone layout folds the navigation behind 菜单
        toggle.click()
    page.click("form[action='/logout'] button[type=submit]")
    page.wait_for_url("**/login")


def _wide_enough(page: Any) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px"


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def _users(base: str, password: str) -> list[dict[str, Any]]:
    token = httpx.post(f"{base}/api/auth/token", data={"username": "demo_admin", "password": password}).json()
    found = httpx.get(f"{base}/api/users", headers={"Authorization": f"Bearer {token['access_token']}"})
    return list(found.json())


@pytest.mark.parametrize("width", WIDTHS)
def test_administrator_adds_a_user_resets_the_password_and_the_user_must_change_it(
    browser: Any, server: dict[str, Any], width: int
) -> None:
    base, password = server["base"], server["credentials"]["demo_admin"]
    context = browser.new_context(viewport={"width": width, "height": 1000})
    page = context.new_page()
    _sign_in(page, base, "demo_admin", password)
    page.wait_for_url("**/admin")
    _wide_enough(page)
    assert page.locator("#users tr[data-user='demo_pharmacist']").count() == 1
    # a session that expires mid-form: sign in again, and what was typed (not the password) is back
    name = f"dr_new_{width}"
    page.fill("#new-username", name)
    page.select_option("#new-role", "doctor")
    page.fill("#new-password", "first-pass-1")
    context.clear_cookies()
    page.click("#add-user button[type=submit]")
    page.wait_for_url("**/login**")
    page.fill("#username", "demo_admin")
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin")
    assert page.input_value("#new-username") == name and page.input_value("#new-role") == "doctor"
    assert page.input_value("#new-password") == ""
    # a double click adds the user once and says so
    page.fill("#new-password", "first-pass-1")
    page.dblclick("#add-user button[type=submit]")
    page.wait_for_url("**/admin?done=create*")
    assert name in page.locator("#notice").inner_text()
    assert [u["username"] for u in _users(base, password)].count(name) == 1
    assert page.input_value("#new-username") == ""  # the confirmed draft is dropped
    # reset the new user's password from the row's actions
    row = page.locator(f"#users tr[data-user='{name}']")
    row.locator("summary").click()
    row.locator("input[name=temporary_password]").fill("temporary-7")
    row.locator("form:has(input[value=reset_password]) button").click()
    page.wait_for_url("**/admin?done=reset_password*")
    assert "临时密码" in page.locator(f"#users tr[data-user='{name}']").inner_text()
    _wide_enough(page)
    _shot(page, f"admin-{width}.png")
    assert axe_serious(page) == []
    page.goto(f"{base}/admin/roles")
    assert "药师" in page.locator("#role-pharmacist").inner_text()
    _wide_enough(page)
    _shot(page, f"admin-roles-{width}.png")
    page.goto(f"{base}/admin/settings")
    assert "Asia/Shanghai" in page.locator("#settings").inner_text()
    _wide_enough(page)
    _sign_out(page)
    # the user signs in with the temporary password and must choose their own before anything else
    _sign_in(page, base, name, "temporary-7")
    page.wait_for_url("**/account/password**")
    page.fill("#current_password", "temporary-7")
    page.fill("#new_password", "my-own-pass-7")
    page.fill("#confirm_password", "my-own-pass-7")
    page.click("form[action='/account/password'] button[type=submit]")
    page.wait_for_url("**/account/password?done=*")
    assert "密码已修改" in page.locator("#notice").inner_text()
    page.click("#continue")
    page.wait_for_url("**/patients")
    _sign_out(page)
    context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_auditor_filters_the_log_and_exports_it(browser: Any, server: dict[str, Any], width: int) -> None:
    base = server["base"]
    page = browser.new_page(viewport={"width": width, "height": 1000}, accept_downloads=True)
    _sign_in(page, base, "demo_auditor", server["credentials"]["demo_auditor"])
    page.wait_for_url("**/audit")
    page.fill("#f-action", "auth.login")
    page.select_option("#f-outcome", "success")
    page.click("#audit-filters button[type=submit]")
    page.wait_for_url("**/audit?*")
    times = page.locator("#entries time").all_inner_texts()
    assert times and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CST", t) for t in times)
    assert set(page.locator("#entries td.mono:nth-child(5)").all_inner_texts()) == {"auth.login"}
    _wide_enough(page)
    _shot(page, f"audit-{width}.png")
    assert axe_serious(page) == []
    with page.expect_download() as download:
        page.click("#export")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert (
        rows and {r["action"] for r in rows} == {"auth.login"} and {r["outcome"] for r in rows} == {"success"}
    )
    _sign_out(page)
    page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_manager_runs_a_validation_that_can_run_and_reads_the_report_in_the_app(
    browser: Any, server: dict[str, Any], width: int
) -> None:
    base = server["base"]
    page = browser.new_page(viewport={"width": width, "height": 1000})
    _sign_in(page, base, "demo_manager", server["credentials"]["demo_manager"])
    page.wait_for_url("**/evaluations")
    assert page.locator("#pair option[value='exam:llm']").is_disabled()  # no model configured
    assert not page.locator("#pair option:checked").is_disabled()  # the default can run
    page.select_option("#pair", "deid:deid")
    page.fill("#limit", "2")
    page.click("#start-eval button[type=submit]")
    page.wait_for_url("**/evaluations")
    first = page.locator("#runs tbody tr").first
    assert "demo_manager" in first.inner_text() and re.search(r"\d\d:\d\d CST", first.inner_text())
    # the page refreshes itself every 5 s while a run is going (bounded at 2 min); a reload from here
    # raced that refresh (net::ERR_ABORTED), so wait for the page's own
    page.locator("#runs tbody tr").first.locator("a", has_text="查看报告").wait_for(timeout=120_000)
    _wide_enough(page)
    _shot(page, f"evaluations-{width}.png")
    assert axe_serious(page) == []
    page.locator("#runs tbody tr").first.locator("a", has_text="查看报告").click()
    page.wait_for_selector("#report svg")
    assert page.locator("header.top").count() == 1  # inside the app chrome
    _shot(page, f"evaluation-report-{width}.png")
    page.click("#back")
    page.wait_for_url("**/evaluations")
    _sign_out(page)
    page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_pharmacist_finds_a_patient_and_reviews_the_medications(
    browser: Any, server: dict[str, Any], width: int
) -> None:
    base = server["base"]
    page = browser.new_page(viewport={"width": width, "height": 1000})
    _sign_in(page, base, "demo_pharmacist", server["credentials"]["demo_pharmacist"])
    page.wait_for_url("**/pharmacy")
    page.fill("#ph-dx", "I10")
    page.click("form[action='/pharmacy'] button[type=submit]")
    page.wait_for_selector("#ph-results")
    page.locator("a.review-link").first.click()
    page.wait_for_selector("#review")
    assert page.locator("#active-meds tbody tr").count() + page.locator("#past-meds").count() >= 1
    assert page.locator("#drug-allergies").count() == 1
    _wide_enough(page)
    _shot(page, f"pharmacy-{width}.png")
    assert axe_serious(page) == []
    _sign_out(page)
    page.close()
