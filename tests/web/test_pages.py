from __future__ import annotations

from datetime import datetime
from urllib.parse import unquote

from fastapi.testclient import TestClient

from medfusion.apps.page_frame import COOKIE
from medfusion.record.clinical_time import SHANGHAI
from medfusion.record.models import Observation, PatientChart
from medfusion.web.chart_view import diagnosis_summary
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
    assert empty.status_code == 422  # a rejection needs its reason: the page again, the problem named
    assert "驳回需要填写原因" in empty.text and "invalid_input" in empty.text and 'role="alert"' in empty.text
    done = client.post(
        f"/drafts/{run_id}", data={"action": "reject", "reason": "证据不足"}, follow_redirects=False
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/drafts?done={run_id}&action=reject#done"
    confirmed = client.get(done.headers["location"])
    assert 'class="alert alert-ok"' in confirmed.text and "已驳回问答草稿" in confirmed.text
    assert "驳回原因：证据不足" in confirmed.text
    with db.session() as session:
        assert session.get(AgentRunRow, run_id).status == "rejected"  # type: ignore[union-attr]
    assert f"/drafts/{run_id}" not in client.get("/drafts").text
    client.post("/logout")
    _login(client, "manager")
    assert client.get("/drafts").status_code == 403


def _condition(cid: str, encounter: str, code: str, name: str, role: str, month: int) -> dict[str, object]:
    return {
        "id": cid,
        "encounter_id": encounter,
        "icd10_code": code,
        "name": name,
        "role": role,
        "recorded_at": datetime(2024, month, 1, 9, tzinfo=SHANGHAI),
    }


def test_only_the_latest_encounters_principal_diagnosis_is_marked_primary() -> None:
    """A role belongs to its encounter: COPD was principal in January, hyperlipidaemia in March. Before,
    every code that had ever been principal showed 主要诊断 (here both)."""
    chart = PatientChart.model_validate(
        {
            "patient": {"id": "P9", "sex": "male", "birth_date": "1960-05-01"},
            "encounters": [
                {
                    "id": "E1",
                    "encounter_class": "outpatient",
                    "admitted_at": datetime(2024, 1, 1, tzinfo=SHANGHAI),
                },
                {
                    "id": "E2",
                    "encounter_class": "outpatient",
                    "admitted_at": datetime(2024, 3, 1, tzinfo=SHANGHAI),
                },
            ],
            "conditions": [
                _condition("C1", "E1", "J44.900", "慢性阻塞性肺病", "primary", 1),
                _condition("C2", "E1", "E78.500", "高脂血症", "secondary", 1),
                _condition("C3", "E2", "E78.500", "高脂血症", "primary", 3),
                _condition("C4", "E2", "J44.900", "慢性阻塞性肺病", "secondary", 3),
            ],
        }
    )
    lines = {line.code: line for line in diagnosis_summary(chart)}
    assert lines["E78.500"].primary and not lines["J44.900"].primary
    assert lines["J44.900"].primary_visits == 1 and lines["E78.500"].primary_visits == 1
    assert diagnosis_summary(chart)[0].code == "E78.500"  # the principal one leads


def test_age_from_birth_date_in_the_display_zone() -> None:
    from datetime import date

    from medfusion.web.chart_view import age_text

    today = date(2026, 3, 1)
    assert age_text(date(1960, 3, 1), today) == "66 岁"  # birthday today
    assert age_text(date(1960, 3, 2), today) == "65 岁"  # birthday tomorrow
    assert age_text("1960-03-02", today) == "65 岁"  # the role's view gives it as text
    assert age_text("1960", today) == "65–66 岁"  # coarsened to the year: both ages it allows
    assert age_text(date(2025, 6, 15), today) == "8 个月"
    assert age_text(date(2026, 2, 20), today) == "9 天"
    assert age_text(None, today) == "年龄未知" and age_text("", today) == "年龄未知"


def test_chart_shows_age_problem_list_roles_lab_trends_and_unit_panels(
    client: TestClient, seeded: list[PatientChart]
) -> None:
    from medfusion.record.clinical_time import age_on, display_zone

    target = next(
        c
        for c in seeded
        if len({c.role for c in c.conditions}) == 2
        and any(
            sum(o.loinc_code == code for o in c.observations) >= 2
            for code in {o.loinc_code for o in c.observations if o.category.value == "laboratory"}
        )
    )
    _login(client, "doctor")
    page = client.get(f"/patients/{target.patient.id}").text
    assert target.patient.birth_date is not None
    age = age_on(target.patient.birth_date, datetime.now(display_zone()).date())
    assert f'id="age">{age} 岁<' in page
    expected = {line.code for line in diagnosis_summary(target) if line.primary}
    assert page.count('data-role="primary"') == len(expected) >= 1
    assert 'data-role="secondary"' in page and "其他诊断" in page
    assert 'id="lab-trends"' in page and 'class="chart sparkline"' in page and 'class="ref-band"' in page
    for panel in ("vitals-bp", "vitals-hr", "vitals-temp"):
        assert f'id="{panel}"' in page
    assert "℃" in page and "mmHg" in page and "次/分" in page


def test_vitals_panels_keep_heart_rate_off_the_mmhg_scale() -> None:
    when = [datetime(2024, m, 1, 9, tzinfo=SHANGHAI) for m in (1, 2, 3)]
    obs = [
        Observation(
            id=f"v{len(name)}-{i}", category="vital-signs", name=name, value=v, unit=unit, effective_at=t
        )
        for name, unit, values in (("收缩压", "mmHg", (150, 142, 131)), ("心率", "次/分", (88, 76, 70)))
        for i, (v, t) in enumerate(zip(values, when, strict=True))
    ]
    svg = vitals_svg(obs)
    assert svg is not None
    bp, hr = svg.split('<figure id="vitals-hr">')
    assert "收缩压 150 mmHg" in bp and "心率" not in bp.split("<svg", 1)[1]
    assert "心率 88 次/分" in hr and "收缩压" not in hr
    assert "<title" in hr and "<desc" in hr and "Asia/Shanghai" in hr
    assert "01-01" in bp or "2024-01" in bp  # a time axis with dates in the display zone


def _stored_draft(agent: str, patient_id: str | None) -> str:
    """A stored pending run with evidence and Markdown, as an app leaves one."""
    import uuid

    from medfusion.agents.runs import RunRecord, store_run
    from medfusion.contract import Citation, Confidence, DraftOutput, Evidence, Provenance, Status
    from medfusion.settings import get_settings
    from medfusion.store.access import Principal
    from medfusion.store.database import get_database

    run_id = str(uuid.uuid4())
    citation = Citation(
        document_id="d1", source="pack:test", title="高血压指南", section="降压治疗", start=0, end=10
    )
    draft = DraftOutput(
        run_id=run_id,
        evidence=[
            Evidence(
                id="K1",
                kind="passage",
                text="血压 ≥140/90 mmHg 启动降压",
                source="pack:test",
                citation=citation,
            )
        ],
        confidence=Confidence(value=0.6, method="test"),
        provenance=Provenance(path="specialist", engine="test"),
        status=Status.needs_clinician_confirmation,
        warnings=[],
        answer="## 会诊意见\n\n**降压治疗**：建议启动药物治疗。[K1]\n\n- 复查血压",
    )
    store_run(
        get_database(get_settings()),
        Principal("doctor", "doctor"),
        RunRecord(
            run_id=run_id,
            agent=agent,
            question="高血压患者如何处理？",
            patient_id=patient_id,
            path="specialist",
            model=None,
            status="needs_clinician_confirmation",
            result=draft.model_dump(mode="json"),
            steps=[],
        ),
    )
    return run_id


def test_drafts_render_as_documents_with_linked_citations(client: TestClient) -> None:
    run_id = _stored_draft("ask", None)
    _login(client, "doctor")
    page = client.get("/drafts").text
    document = page.split('<div class="doc">', 1)[1].split("</div>", 1)[0]
    assert "<h2>会诊意见</h2>" in document and "<strong>降压治疗</strong>" in document
    assert "**" not in document and "##" not in document  # formatted, not raw Markdown
    assert "**降压治疗**" in page.split("<textarea", 1)[1]  # the editor holds the Markdown source
    anchor = f"ev-{run_id[:8]}-K1"
    assert f'<a class="cite" href="#{anchor}"' in page and f'<li id="{anchor}">' in page
    assert 'class="path-tag" data-path="specialist"' in page and "待医生确认" in page
    assert "不能替代医生的诊断与判断" in page
    assert f'id="edit-{run_id}"' in page and 'rows="16"' in page


def test_a_double_accept_gets_the_same_confirmation_and_one_feedback_row(
    client: TestClient, seeded: list[PatientChart]
) -> None:
    from sqlalchemy import func, select

    from medfusion.settings import get_settings
    from medfusion.store.database import get_database
    from medfusion.store.tables import AuditRow, FeedbackRow

    patient = seeded[0].patient.id
    run_id = _stored_draft("mdt", patient)  # MDT writes confirmed minutes back into the chart
    _login(client, "doctor")
    first = client.post(f"/drafts/{run_id}", data={"action": "accept"}, follow_redirects=False)
    second = client.post(f"/drafts/{run_id}", data={"action": "accept"}, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    db = get_database(get_settings())
    with db.session() as session:
        rows = session.scalar(
            select(func.count()).select_from(FeedbackRow).where(FeedbackRow.run_id == run_id)
        )
        duplicates = session.scalar(
            select(func.count()).select_from(AuditRow).where(AuditRow.action == "feedback.duplicate")
        )
    assert rows == 1 and duplicates == 1
    page = client.get(second.headers["location"]).text
    assert "已采纳多学科会诊草稿" in page and "多学科会诊纪要" in page
    assert f'href="/patients/{patient}#notes"' in page
    assert "多学科会诊纪要" in client.get(f"/patients/{patient}").text  # the document went into the chart


def test_a_draft_reviewed_by_someone_else_is_not_reviewed_again_from_a_stale_page(
    client: TestClient,
) -> None:
    run_id = _stored_draft("ask", None)
    _login(client, "doctor")
    client.post(f"/drafts/{run_id}", data={"action": "reject", "reason": "证据不足"})
    client.post("/logout")
    _login(client, "nurse")
    late = client.post(f"/drafts/{run_id}", data={"action": "accept"}, follow_redirects=False)
    assert late.headers["location"] == f"/drafts?done={run_id}&action=reject#done"
    page = client.get(late.headers["location"]).text
    assert 'class="alert alert-warn"' in page and "此前已由 doctor 处理" in page


def test_a_review_after_the_session_expired_goes_to_sign_in_and_back_to_the_draft(
    client: TestClient,
) -> None:
    run_id = _stored_draft("ask", None)
    response = client.post(f"/drafts/{run_id}", data={"action": "accept"}, follow_redirects=False)
    assert response.status_code == 303
    assert unquote(response.headers["location"]) == f"/login?next=/drafts#run-{run_id}"


def test_a_blank_reason_is_named_at_its_field(client: TestClient) -> None:
    run_id = _stored_draft("ask", None)
    _login(client, "doctor")
    response = client.post(f"/drafts/{run_id}", data={"action": "reject", "reason": "  "})
    assert response.status_code == 422 and 'aria-invalid="true"' in response.text
    assert f'id="problem-{run_id}"' in response.text
