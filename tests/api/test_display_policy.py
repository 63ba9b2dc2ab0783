"""Minimum-necessary display (issue 15 part 6): per role × surface, what is masked; reveals are audited.

On ``main`` before the change public_health saw full 身份证号, phone and address in search and on the chart,
and doctors saw every patient's full identifiers in the list: each test below failed there."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medfusion.record.models import PatientChart
from medfusion.store.display import DisplayPolicy, ShownChart, mask_name, policy
from medfusion.store.masks import mask_middle

Auth = Callable[[str], dict[str, str]]
SEARCHERS = ("doctor", "nurse", "manager", "public_health", "admin")
ID_18 = re.compile(r"(?<![0-9])\d{17}[0-9Xx](?![0-9])")
MOBILE = re.compile(r"(?<![0-9])1[3-9]\d{9}(?![0-9])")


def _secrets(charts: list[PatientChart]) -> list[str]:
    return [v for c in charts for v in (c.patient.id_number, c.patient.phone) if v]


def _audit(client: TestClient, auth: Auth, action: str) -> list[dict]:  # type: ignore[type-arg]
    entries = client.get("/api/audit", headers=auth("auditor"), params={"limit": 1000}).json()
    return [e for e in entries if e["action"] == action]


@pytest.mark.parametrize("role", SEARCHERS)
def test_lists_mask_identifiers_for_every_role(
    client: TestClient, auth: Auth, seeded: list[PatientChart], role: str
) -> None:
    body = client.get("/api/patients", headers=auth(role), params={"limit": 100})
    assert body.status_code == 200
    text = body.text
    for secret in _secrets(seeded):
        assert secret not in text, role
    assert not ID_18.search(text) and not MOBILE.search(text)
    by_id = {c.patient.id: c.patient for c in seeded}
    for item in body.json()["items"]:
        p = by_id[item["id"]]
        assert item["address"] is None or item["address"]["line"] is None
        if role == "public_health":
            assert item["id_number"] is None and item["phone"] is None
            assert item["name"] == mask_name(p.name) and item["name"] != p.name
            assert item["birth_date"] == str(p.birth_date.year)
            assert item["view"] == "deidentified"
        else:
            assert item["name"] == p.name and item["birth_date"] == p.birth_date.isoformat()
            assert p.id_number is None or item["id_number"] == mask_middle(p.id_number, 6, 4)
            assert p.phone is None or item["phone"] == mask_middle(p.phone, 3, 4)
            assert item["view"] == "masked" and "id_number" in item["masked"]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    role=st.sampled_from(SEARCHERS),
    name=st.one_of(
        st.none(), st.text(alphabet="王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗明华秀英", max_size=2)
    ),
    limit=st.integers(min_value=1, max_value=60),
    offset=st.integers(min_value=0, max_value=12),
)
def test_no_list_response_for_any_role_contains_a_full_id_number_or_mobile(
    client: TestClient,
    auth: Auth,
    seeded: list[PatientChart],
    role: str,
    name: str | None,
    limit: int,
    offset: int,
) -> None:
    params: dict[str, str | int] = {"limit": limit, "offset": offset}
    if name:
        params["name"] = name
    text = client.get("/api/patients", headers=auth(role), params=params).text
    assert not any(secret in text for secret in _secrets(seeded))
    assert not ID_18.search(text) and not MOBILE.search(text)


@pytest.mark.parametrize("role", ["doctor", "nurse", "admin"])
def test_chart_masks_identifiers_until_an_audited_reveal(
    client: TestClient, auth: Auth, seeded: list[PatientChart], role: str
) -> None:
    p = seeded[1].patient
    assert p.id_number and p.phone
    h = auth(role)
    masked = client.get(f"/api/patients/{p.id}/chart", headers=h)
    assert masked.status_code == 200
    assert p.id_number not in masked.text and p.phone not in masked.text
    shown = masked.json()["patient"]
    assert shown["id_number"] == mask_middle(p.id_number, 6, 4) and shown["name"] == p.name
    assert {"id_number", "phone"} <= set(shown["masked"])
    assert not _audit(client, auth, "patient.reveal")
    revealed = client.get(
        f"/api/patients/{p.id}/chart",
        headers=h,
        params={"reveal": "identifiers", "reason": "核对身份 identity check"},
    )
    assert revealed.status_code == 200
    full = revealed.json()["patient"]
    assert full["id_number"] == p.id_number and full["phone"] == p.phone and full["masked"] == []
    assert full["address"] == (p.address.model_dump(mode="json") if p.address else None)
    (entry,) = _audit(client, auth, "patient.reveal")
    assert (entry["actor"], entry["patient_id"], entry["outcome"]) == (role, p.id, "success")
    assert {"id_number", "phone"} <= set(entry["detail"]["fields"])
    assert entry["detail"]["reason"] == "核对身份 identity check"
    assert p.id_number not in json.dumps(entry, ensure_ascii=False)
    assert p.phone not in json.dumps(entry, ensure_ascii=False)


def test_demographics_read_follows_the_chart_view(
    client: TestClient, auth: Auth, seeded: list[PatientChart]
) -> None:
    p = seeded[2].patient
    assert p.id_number
    masked = client.get(f"/api/patients/{p.id}", headers=auth("doctor")).json()
    assert masked["id_number"] == mask_middle(p.id_number, 6, 4)
    full = client.get(f"/api/patients/{p.id}", headers=auth("doctor"), params={"reveal": "identifiers"})
    assert full.json()["id_number"] == p.id_number
    ph = client.get(f"/api/patients/{p.id}", headers=auth("public_health")).json()
    assert ph["id_number"] is None and ph["name"] == mask_name(p.name)


def test_public_health_sees_a_deidentified_chart_and_may_not_reveal(
    client: TestClient, auth: Auth, seeded: list[PatientChart]
) -> None:
    chart = seeded[0]
    p = chart.patient
    h = auth("public_health")
    response = client.get(f"/api/patients/{p.id}/chart", headers=h)
    assert response.status_code == 200
    text = response.text
    for secret in (p.name, p.id_number, p.phone, p.birth_date.isoformat()):
        assert secret and secret not in text
    if p.address and p.address.line:
        assert p.address.line not in text
    body = ShownChart.model_validate(response.json())
    assert body.patient.view == "deidentified" and body.patient.birth_date == str(p.birth_date.year)
    assert len(body.notes) == len(chart.notes) and len(body.conditions) == len(chart.conditions)
    denied = client.get(f"/api/patients/{p.id}/chart", headers=h, params={"reveal": "identifiers"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"
    (entry,) = _audit(client, auth, "patient.reveal")
    assert (entry["actor"], entry["outcome"]) == ("public_health", "denied")


def test_patient_sees_their_own_record_in_full(
    client: TestClient, auth: Auth, seeded: list[PatientChart]
) -> None:
    p = seeded[0].patient
    own = client.get(f"/api/patients/{p.id}/chart", headers=auth("patient")).json()["patient"]
    assert own["id_number"] == p.id_number and own["phone"] == p.phone and own["view"] == "full"


def test_public_health_export_leaks_nothing_the_chart_view_masks(
    client: TestClient, auth: Auth, seeded: list[PatientChart]
) -> None:
    chart = seeded[0]
    p = chart.patient
    response = client.get(f"/api/patients/{p.id}/fhir", headers=auth("public_health"))
    assert response.status_code == 200
    text = response.text
    for secret in (p.name, p.id_number, p.phone, p.birth_date.isoformat()):
        assert secret and secret not in text
    if p.address and p.address.line:
        assert p.address.line not in text
    bundle = response.json()
    assert {"code": "PSEUDED"}.items() <= bundle["meta"]["security"][0].items()
    (patient,) = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert patient["birthDate"] == str(p.birth_date.year) and "identifier" not in patient
    assert "telecom" not in patient
    # a care role's export is the full record (the receiving system matches patients by identifiers)
    doctor = client.get(f"/api/patients/{p.id}/fhir", headers=auth("doctor")).text
    assert p.id_number and p.id_number in doctor
    views = {(e["actor"], e["detail"]["view"]) for e in _audit(client, auth, "fhir.export")}
    assert {("public_health", "deidentified"), ("doctor", "full")} <= views


def test_every_role_of_the_permission_table_has_a_display_policy() -> None:
    from medfusion.store.access import SYSTEM_ROLE, Role

    assert {r.value for r in Role} | {SYSTEM_ROLE} <= set(policy().roles)
    assert set(ShownChart.model_fields) == set(PatientChart.model_fields)


def test_the_policy_file_is_schema_checked() -> None:
    data = policy().model_dump(mode="json")
    data["roles"]["doctor"]["list"] = "everything"
    with pytest.raises(ValueError, match="list"):
        DisplayPolicy.model_validate(data)
