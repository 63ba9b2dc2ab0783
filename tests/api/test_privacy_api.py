from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from medfusion.record.models import PatientChart

Auth = Callable[[str], dict[str, str]]


def test_text_deid_for_permitted_roles(client: TestClient, auth: Auth) -> None:
    body = {"text": "患者张三，电话13812345678，于2024年3月1日入院。"}
    response = client.post("/api/privacy/deid", headers=auth("doctor"), json=body)
    assert response.status_code == 200
    result = response.json()
    assert result["text"]["text"] == "患者[姓名]，电话[电话]，于[日期]入院。"
    assert result["provenance"]["path"] == "specialist" and result["status"] == "draft"
    for role in ("patient", "manager", "auditor", "nurse"):
        assert client.post("/api/privacy/deid", headers=auth(role), json=body).status_code == 403


def test_record_deid_is_pseudonymised(client: TestClient, auth: Auth, seeded: list[PatientChart]) -> None:
    chart = seeded[2].model_dump(mode="json")
    response = client.post(
        "/api/privacy/deid", headers=auth("doctor"), json={"record": chart, "mode": "pseudo"}
    )
    assert response.status_code == 200, response.text
    text = response.text
    assert seeded[2].patient.name not in text and (seeded[2].patient.id_number or "x") not in text
    bad = client.post("/api/privacy/deid", headers=auth("doctor"), json={"record": chart, "mode": "tag"})
    assert bad.status_code == 422
    both = client.post("/api/privacy/deid", headers=auth("doctor"), json={"text": "x", "record": chart})
    assert both.status_code == 422


def test_deid_calls_are_audited_without_the_text(client: TestClient, auth: Auth) -> None:
    client.post("/api/privacy/deid", headers=auth("doctor"), json={"text": "患者王五电话13900001111"})
    entries = client.get("/api/audit", headers=auth("auditor"), params={"limit": 1000}).json()
    deid = [e for e in entries if e["action"] == "privacy.deid"]
    assert deid and "王五" not in str(deid) and deid[-1]["detail"]["counts"]["PHONE"] == 1
