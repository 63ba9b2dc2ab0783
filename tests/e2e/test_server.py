"""Drive a real ``medfusion serve`` process: the two-command experience and PII-free server logs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from medfusion.synth import generate_population
from tests.e2e.conftest import DEMO_SIZE

pytestmark = pytest.mark.e2e


def test_demo_server_serves_secured_chinese_records_and_logs_no_pii(server: dict[str, Any]) -> None:
    base, creds = server["base"], server["credentials"]
    assert set(creds) == {
        f"demo_{r}"
        for r in ("doctor", "nurse", "pharmacist", "manager", "public_health", "patient", "auditor", "admin")
    }
    assert creds["demo_doctor"] in server["seed_output"]
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/api/patients").status_code == 401
        token = client.post(
            "/api/auth/token", data={"username": "demo_doctor", "password": creds["demo_doctor"]}
        ).json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        page = client.get("/api/patients", headers=h, params={"limit": 100}).json()
        assert page["total"] == DEMO_SIZE
        from medfusion.interop.fhir.constants import FHIR_VERSION

        residents = list(generate_population(DEMO_SIZE, seed=20250630))
        for chart in residents[:8]:
            p = chart.patient
            found = client.get(
                "/api/patients", headers=h, params={"name": p.name, "id_number": p.id_number}
            ).json()
            assert p.id in [x["id"] for x in found["items"]]
            full = client.get(f"/api/patients/{p.id}/chart", headers=h).json()
            assert full["notes"] and any("主诉" in n["text"] for n in full["notes"])
            bundle = client.get(f"/api/patients/{p.id}/fhir", headers=h).json()
            assert bundle["meta"]["tag"][0]["code"] == FHIR_VERSION
        client.post(
            "/api/patients",
            headers=h,
            json={"patient": {**residents[0].patient.model_dump(mode="json"), "id_number": "123"}},
        )
        assert client.get("/docs").status_code == 200
    log = server["log"].read_text()
    assert "GET /api/patients/{patient_id}/chart 200" in log
    for chart in residents:
        p = chart.patient
        for secret in (p.name, p.id_number, p.phone):
            assert secret and secret not in log, "PII in server log"
