from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from medfusion.logs import redact
from medfusion.record.models import PatientChart

Auth = Callable[[str], dict[str, str]]


def test_traffic_leaves_no_names_or_id_numbers_in_logs(
    client: TestClient, auth: Auth, seeded: list[PatientChart], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    h = auth("doctor")
    for chart in seeded[:6]:
        p = chart.patient
        client.get("/api/patients", headers=h, params={"name": p.name, "id_number": p.id_number})
        client.get(f"/api/patients/{p.id}/chart", headers=h)
        client.put(f"/api/patients/{p.id}", headers=h, json=p.model_dump(mode="json"))
        client.post(
            "/api/patients", headers=h, json={"patient": {**p.model_dump(mode="json"), "id_number": "1"}}
        )
    # the test client's own request log (httpx) is not the server's; everything else is
    server_log = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    assert "GET /api/patients/{patient_id}/chart 200" in server_log  # the access log did run
    for chart in seeded:
        assert chart.patient.name not in server_log
        assert chart.patient.id_number not in server_log  # type: ignore[operator]
        assert chart.patient.phone not in server_log  # type: ignore[operator]


def test_redaction_filter_masks_id_numbers_and_mobiles() -> None:
    assert redact("id 11010519491231002X tel 13800138000 ok") == "id [id-number] tel [phone] ok"
