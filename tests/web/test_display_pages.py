"""The web pages follow the display policy (issue 15 part 6): lists masked for every role, the chart masked
until an audited reveal, public-health staff de-identified. Each failed on main (full values shown)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from medfusion.record.models import PatientChart
from medfusion.store.display import mask_name
from medfusion.store.masks import mask_middle
from tests.api.conftest import PASSWORD


def _login(client: TestClient, username: str) -> None:
    client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})


def _secrets(charts: list[PatientChart]) -> list[str]:
    return [v for c in charts for v in (c.patient.id_number, c.patient.phone) if v]


def test_doctor_list_is_masked(client: TestClient, seeded: list[PatientChart]) -> None:
    _login(client, "doctor")
    page = client.get("/patients").text
    assert not any(secret in page for secret in _secrets(seeded))
    p = seeded[0].patient
    assert p.id_number and mask_middle(p.id_number, 6, 4) in page and 'class="patient-link"' in page


def test_doctor_chart_is_masked_until_an_audited_reveal(
    client: TestClient, seeded: list[PatientChart]
) -> None:
    p = seeded[3].patient
    assert p.id_number and p.phone
    _login(client, "doctor")
    page = client.get(f"/patients/{p.id}").text
    assert p.id_number not in page and p.phone not in page
    assert 'id="reveal"' in page and mask_middle(p.id_number, 6, 4) in page
    revealed = client.get(f"/patients/{p.id}", params={"reveal": "identifiers"}).text
    assert p.id_number in revealed and p.phone in revealed and 'id="reveal"' not in revealed
    client.post("/logout")
    _login(client, "auditor")
    audit_page = client.get("/audit", params={"patient_id": p.id}).text
    assert "patient.reveal" in audit_page and p.id_number not in audit_page


def test_public_health_pages_are_deidentified(client: TestClient, seeded: list[PatientChart]) -> None:
    _login(client, "public_health")
    listing = client.get("/patients").text
    assert not any(secret in listing for secret in _secrets(seeded))
    p = seeded[0].patient
    assert p.name and p.name not in listing and (mask_name(p.name) or "") in listing
    chart = client.get(f"/patients/{p.id}")
    assert chart.status_code == 200
    assert p.name not in chart.text and p.birth_date.isoformat() not in chart.text
    assert 'id="reveal"' not in chart.text
    denied = client.get(f"/patients/{p.id}", params={"reveal": "identifiers"})
    assert denied.status_code == 403


def test_patient_sees_their_own_chart_in_full(client: TestClient, seeded: list[PatientChart]) -> None:
    p = seeded[0].patient
    _login(client, "patient")
    page = client.get(f"/patients/{p.id}").text
    assert p.id_number and p.id_number in page and 'id="masked-note"' not in page
