from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from medfusion.record.models import PatientChart

Auth = Callable[[str], dict[str, str]]

# role → (search, read chart, write, read audit, manage users)
MATRIX = {
    "doctor": (200, 200, 200, 403, 403),
    "nurse": (200, 200, 200, 403, 403),
    "pharmacist": (200, 200, 403, 403, 403),  # reads medication lists, never writes a chart
    "manager": (200, 403, 403, 403, 403),
    "public_health": (200, 200, 403, 403, 403),
    "auditor": (403, 403, 403, 200, 403),
    "admin": (200, 200, 200, 200, 200),
    "patient": (403, 403, 403, 403, 403),  # another patient's chart: 403
}


@pytest.mark.parametrize("role", sorted(MATRIX))
def test_permission_table(client: TestClient, auth: Auth, role: str) -> None:
    h = auth(role)
    shown = client.get(
        "/api/patients/P0000002", headers=auth("admin"), params={"reveal": "identifiers"}
    ).json()
    patient = {k: v for k, v in shown.items() if k not in ("view", "masked", "identifiers")}
    observed = (
        client.get("/api/patients", headers=h).status_code,
        client.get("/api/patients/P0000002/chart", headers=h).status_code,
        client.put("/api/patients/P0000002", headers=h, json=patient).status_code,
        client.get("/api/audit", headers=h).status_code,
        client.get("/api/users", headers=h).status_code,
    )
    assert observed == MATRIX[role]


def test_patient_reaches_only_their_own_record(client: TestClient, auth: Auth) -> None:
    h = auth("patient")
    assert client.get("/api/patients/P0000001/chart", headers=h).status_code == 200
    assert client.get("/api/patients/P0000001/fhir", headers=h).status_code == 200
    for path in ("/api/patients/P0000002", "/api/patients/P0000002/chart", "/api/patients/P0000002/fhir"):
        response = client.get(path, headers=h)
        assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"


def test_admin_adds_users_and_changes_are_audited(client: TestClient, auth: Auth) -> None:
    admin = auth("admin")
    created = client.post(
        "/api/users", headers=admin, json={"username": "dr_li", "password": "longenough1", "role": "doctor"}
    )
    assert created.status_code == 201
    assert (
        client.post(
            "/api/users",
            headers=admin,
            json={"username": "dr_li", "password": "longenough1", "role": "doctor"},
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/api/users", headers=admin, json={"username": "p2", "password": "longenough1", "role": "patient"}
        ).status_code
        == 422
    )
    denied = client.post(
        "/api/users",
        headers=auth("doctor"),
        json={"username": "dr_x", "password": "longenough1", "role": "admin"},
    )
    assert denied.status_code == 403
    entries = client.get("/api/audit", headers=auth("auditor"), params={"limit": 1000}).json()
    creates = [(e["actor"], e["outcome"]) for e in entries if e["action"] == "user.create"]
    assert (
        ("admin", "success") in creates and ("doctor", "denied") in creates and ("admin", "failed") in creates
    )


def test_every_patient_data_access_is_audited(client: TestClient, auth: Auth) -> None:
    h = auth("doctor")
    client.get("/api/patients", headers=h, params={"name": "王"})
    client.get("/api/patients/P0000003", headers=h)
    client.get("/api/patients/P0000003/chart", headers=h)
    client.get("/api/patients/P0000003/fhir", headers=h)
    client.get("/api/patients/P0000003/chart", headers=auth("patient"))
    entries = client.get("/api/audit", headers=auth("auditor"), params={"limit": 1000}).json()
    seen = {(e["actor"], e["action"], e["patient_id"], e["outcome"]) for e in entries}
    assert ("doctor", "patient.search", None, "success") in seen
    assert ("doctor", "patient.read", "P0000003", "success") in seen
    assert ("doctor", "chart.read", "P0000003", "success") in seen
    assert ("doctor", "fhir.export", "P0000003", "success") in seen
    assert ("patient", "chart.read", "P0000003", "denied") in seen
    search = next(e for e in entries if e["action"] == "patient.search")
    assert search["detail"]["filters"] == ["name"] and "王" not in str(search["detail"])
    assert client.get("/api/audit/verify", headers=auth("auditor")).json()["ok"] is True


def test_managers_and_doctors_alike_see_lists_with_identifiers_masked(
    client: TestClient, auth: Auth, seeded: list[PatientChart]
) -> None:
    # issue 15: on main doctors saw every patient's full 身份证号 and phone in the list
    by_id = {c.patient.id: c.patient for c in seeded}
    for role in ("manager", "doctor"):
        for m in client.get("/api/patients", headers=auth(role), params={"limit": 3}).json()["items"]:
            p = by_id[m["id"]]
            assert p.id_number and p.phone
            assert m["name"] == p.name
            assert m["id_number"] == p.id_number[:6] + "*" * 8 + p.id_number[-4:]
            assert m["phone"] == p.phone[:3] + "*" * 4 + p.phone[-4:]
