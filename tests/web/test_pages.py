from __future__ import annotations

from datetime import datetime
from urllib.parse import unquote

from fastapi.testclient import TestClient

from medfusion.record.clinical_time import SHANGHAI
from medfusion.record.models import Observation, PatientChart
from medfusion.web.pages import COOKIE, diagnosis_summary
from medfusion.web.vitals_chart import vitals_svg
from tests.api.conftest import PASSWORD


def _login(client: TestClient, username: str, next_url: str = "/") -> object:
    return client.post(
        "/login", data={"username": username, "password": PASSWORD, "next": next_url}, follow_redirects=False
    )


def test_anonymous_pages_redirect_to_login(client: TestClient) -> None:
    for path in ("/", "/patients", "/patients/P0000001", "/audit"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
    assert "登录" in client.get("/login").text


def test_login_sets_a_strict_http_only_cookie(client: TestClient) -> None:
    response = _login(client, "doctor", "/patients?name=王")
    location = unquote(response.headers["location"])  # type: ignore[attr-defined]
    assert response.status_code == 303 and location == "/patients?name=王"  # type: ignore[attr-defined]
    cookie = response.headers["set-cookie"].lower()  # type: ignore[attr-defined]
    assert COOKIE in cookie and "httponly" in cookie and "samesite=strict" in cookie


def test_open_redirects_are_refused(client: TestClient) -> None:
    assert _login(client, "doctor", "//evil.example/x").headers["location"] == "/"  # type: ignore[attr-defined]
    assert _login(client, "doctor", "https://evil.example").headers["location"] == "/"  # type: ignore[attr-defined]


def test_wrong_password_shows_the_form_again(client: TestClient) -> None:
    response = client.post("/login", data={"username": "doctor", "password": "wrong-one", "next": "/"})
    assert response.status_code == 401 and "用户名或密码错误" in response.text
    assert COOKIE not in response.headers.get("set-cookie", "")


def test_search_and_chart_with_abnormal_labs_marked(client: TestClient, seeded: list[PatientChart]) -> None:
    _login(client, "doctor")
    target = next(
        c for c in seeded if any(o.is_abnormal for o in c.observations if o.category.value == "laboratory")
    )
    page = client.get("/patients", params={"name": target.patient.name})
    assert page.status_code == 200 and f"/patients/{target.patient.id}" in page.text
    chart = client.get(f"/patients/{target.patient.id}")
    assert chart.status_code == 200
    for section in ("就诊时间线", "诊断", "生命体征趋势", "检验结果", "用药", "病历文书"):
        assert section in chart.text
    assert 'class="abnormal"' in chart.text
    assert "偏高" in chart.text or "偏低" in chart.text
    assert "<svg" in chart.text


def test_patient_sees_only_their_own_chart(client: TestClient) -> None:
    _login(client, "patient")
    home = client.get("/", follow_redirects=False)
    assert home.headers["location"] == "/patients/P0000001"
    assert client.get("/patients/P0000001").status_code == 200
    other = client.get("/patients/P0000002")
    assert other.status_code == 403 and "只能访问本人病历" in other.text
    assert client.get("/patients").status_code == 403


def test_manager_list_is_masked_and_has_no_chart_links(
    client: TestClient, seeded: list[PatientChart]
) -> None:
    _login(client, "manager")
    page = client.get("/patients").text
    assert "********" in page and 'class="patient-link"' not in page
    assert seeded[0].patient.id_number not in page  # type: ignore[operator]


def test_auditor_reads_the_audit_log_including_web_access(client: TestClient) -> None:
    _login(client, "doctor")
    client.get("/patients/P0000003")
    client.post("/logout")
    _login(client, "auditor")
    page = client.get("/audit")
    assert page.status_code == 200 and "chart.read" in page.text and "P0000003" in page.text


def test_logout_clears_the_session(client: TestClient) -> None:
    _login(client, "doctor")
    assert client.get("/patients").status_code == 200
    client.post("/logout")
    assert client.get("/patients", follow_redirects=False).status_code == 303


def test_vitals_svg_plots_blood_pressure_and_escapes_labels() -> None:
    when = [datetime(2024, m, 1, 9, tzinfo=SHANGHAI) for m in (1, 2, 3)]
    obs = [
        Observation(id=f"s{i}", category="vital-signs", name="收缩压", value=v, unit="mmHg", effective_at=t)
        for i, (v, t) in enumerate(zip((150, 142, 131), when, strict=True))
    ]
    svg = vitals_svg(obs)
    assert svg is not None and svg.count("<circle") == 3 and "收缩压 150" in svg
    assert vitals_svg([]) is None


def test_diagnosis_summary_groups_visits_by_code(seeded: list[PatientChart]) -> None:
    chart = max(seeded, key=lambda c: len(c.conditions))
    lines = diagnosis_summary(chart)
    assert sum(line.visits for line in lines) == len(chart.conditions)
    assert len({line.code for line in lines}) == len(lines)


def test_drafts_page_reviews_a_draft_and_refuses_roles_that_may_not(
    client: TestClient, tmp_path: object
) -> None:
    from medfusion.apps.ask.models import AskRequest
    from medfusion.apps.ask.service import AskService
    from medfusion.llm import GeneralModel
    from medfusion.settings import Settings, get_settings
    from medfusion.store.access import Principal
    from medfusion.store.database import get_database
    from medfusion.store.tables import AgentRunRow

    db = get_database(get_settings())
    general = GeneralModel.from_settings(Settings(data_dir=get_settings().resolved_data_dir))
    run_id = (
        AskService(db, Principal("doctor", "doctor"), general)
        .ask(AskRequest(question="高血压怎么治疗？"))
        .run_id
    )
    _login(client, "doctor")
    page = client.get("/drafts")
    assert page.status_code == 200 and "高血压怎么治疗" in page.text and f"/drafts/{run_id}" in page.text
    empty = client.post(f"/drafts/{run_id}", data={"action": "reject"}, follow_redirects=False)
    assert empty.status_code == 422  # a rejection needs its reason
    done = client.post(
        f"/drafts/{run_id}", data={"action": "reject", "reason": "证据不足"}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == "/drafts"
    with db.session() as session:
        assert session.get(AgentRunRow, run_id).status == "rejected"  # type: ignore[union-attr]
    assert f"/drafts/{run_id}" not in client.get("/drafts").text
    client.post("/logout")
    _login(client, "manager")
    assert client.get("/drafts").status_code == 403
