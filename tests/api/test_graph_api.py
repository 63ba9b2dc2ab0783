from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from medfusion.knowledge import packs
from medfusion.record.models import AllergyIntolerance, PatientChart
from medfusion.settings import get_settings
from medfusion.store.database import get_database
from medfusion.store.patients import PatientRepository

Auth = Callable[[str], dict[str, str]]


def _install() -> None:
    db = get_database(get_settings())
    for path in packs.shipped():
        packs.install(db, path)


def test_graph_routes_answer_with_sources(client: TestClient, auth: Auth) -> None:
    _install()
    headers = auth("doctor")
    neighbours = client.get("/api/graph/neighbours", headers=headers, params={"name": "痛风"}).json()
    assert any(n["relation"] == "belongs_to_department" and n["name"] == "风湿免疫科" for n in neighbours)
    path = client.get("/api/graph/path", headers=headers, params={"from": "布洛芬", "to": "非甾体抗炎药"})
    assert path.status_code == 200 and [e["relation"] for e in path.json()] == ["member_of", "member_of"]
    ranked = client.get("/api/graph/diagnose", headers=headers, params={"symptoms": "烧心,反酸"}).json()
    assert ranked[0]["disease"] == "胃食管反流病"
    votes = client.get("/api/graph/department", headers=headers, params={"names": "心房颤动"}).json()
    assert votes == [{"department": "心血管内科", "votes": 1}]
    assert client.get("/api/graph/neighbours", params={"name": "痛风"}).status_code == 401


def test_check_reads_the_chart_through_the_audited_service(
    client: TestClient, auth: Auth, seeded: list[PatientChart]
) -> None:
    _install()
    chart = seeded[1].model_copy(deep=True)
    chart.allergies = [AllergyIntolerance(id="alg-test-1", substance="青霉素")]
    with get_database(get_settings()).session() as session:
        PatientRepository(session).replace_chart(chart)
    body = {"patient_id": chart.patient.id, "drugs": ["阿莫西林"], "conditions": ["支气管哮喘"]}
    report = client.post("/api/graph/check", headers=auth("doctor"), json=body).json()
    kinds = {(c["type"], tuple(c["items"])) for c in report["conflicts"]}
    assert ("allergy", ("青霉素", "阿莫西林")) in kinds
    assert report["status"] == "needs_clinician_confirmation"
    params = {"patient_id": chart.patient.id}
    entries = client.get("/api/audit", headers=auth("auditor"), params=params).json()
    assert any(e["actor"] == "doctor" and e["action"] == "chart.read" for e in entries)
    plain = client.post(
        "/api/graph/check", headers=auth("nurse"), json={"drugs": ["华法林", "布洛芬"]}
    ).json()
    assert plain["conflicts"][0]["type"] == "drug_interaction"
    assert client.post("/api/graph/check", headers=auth("doctor"), json={"drugs": "x"}).status_code == 422


def test_ask_returns_a_cited_answer(client: TestClient, auth: Auth) -> None:
    _install()
    response = client.post("/api/kb/ask", headers=auth("patient"), json={"question": "痛风急性发作怎么治疗"})
    answer = response.json()
    assert response.status_code == 200 and answer["sentences"]
    ids = {e["id"] for e in answer["evidence"]}
    assert all(set(s["citations"]) <= ids for s in answer["sentences"])
    assert client.post("/api/kb/ask", headers=auth("patient"), json={"question": ""}).status_code == 422
