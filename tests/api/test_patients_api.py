from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from medfusion.interop.fhir import chart_to_bundle
from medfusion.record.models import PatientChart
from medfusion.store.display import ShownChart

Auth = Callable[[str], dict[str, str]]
REVEAL = {
    "reveal": "identifiers"
}  # reads show identifiers masked unless revealed (store/display_policy.toml)
NEW_PATIENT = {
    "id": "N001",
    "name": "陆建华",
    "sex": "male",
    "birth_date": "1958-03-07",
    "id_number": "310106195803070010",
}  # valid check digit


def _error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"])
    return dict(body["error"])


def test_search_with_optional_filters(client: TestClient, auth: Auth, seeded: list[PatientChart]) -> None:
    h = auth("doctor")
    everyone = client.get("/api/patients", headers=h).json()
    assert everyone["total"] == len(seeded)
    target = seeded[3]
    by_id = client.get("/api/patients", headers=h, params={"id_number": target.patient.id_number}).json()
    assert [p["id"] for p in by_id["items"]] == [target.patient.id]
    code = target.conditions[0].icd10_code
    by_code = client.get("/api/patients", headers=h, params={"diagnosis_code": code}).json()
    assert target.patient.id in [p["id"] for p in by_code["items"]]
    dept = target.encounters[0].department
    by_dept = client.get(
        "/api/patients", headers=h, params={"department": dept, "name": target.patient.name}
    ).json()
    assert target.patient.id in [p["id"] for p in by_dept["items"]]


def test_create_read_update_and_chart(client: TestClient, auth: Auth, seeded: list[PatientChart]) -> None:
    h = auth("doctor")
    created = client.post("/api/patients", headers=h, json={"patient": NEW_PATIENT})
    assert created.status_code == 201, created.text
    assert client.post("/api/patients", headers=h, json={"patient": NEW_PATIENT}).status_code == 409
    updated = {**NEW_PATIENT, "phone": "13912345678"}
    assert client.put("/api/patients/N001", headers=h, json=updated).json()["phone"] == "13912345678"
    assert client.get("/api/patients/N001", headers=h, params=REVEAL).json()["phone"] == "13912345678"
    chart = seeded[2].model_dump(mode="json")
    chart["patient"] = {**updated}
    replaced = client.put("/api/patients/N001/chart", headers=h, json=chart)
    assert replaced.status_code == 200, replaced.text
    got = client.get("/api/patients/N001/chart", headers=h, params=REVEAL).json()
    assert ShownChart.model_validate(got).as_chart() == PatientChart.model_validate(chart)


def test_path_and_body_ids_must_agree(client: TestClient, auth: Auth) -> None:
    response = client.put("/api/patients/P0000002", headers=auth("doctor"), json=NEW_PATIENT)
    assert response.status_code == 422 and _error(response)["details"][0]["field"] == "id"


@pytest.mark.parametrize(
    "patient, field",
    [
        ({**NEW_PATIENT, "id_number": "310106195803070011"}, "patient.id_number"),
        ({**NEW_PATIENT, "birth_date": "1958-02-30"}, "patient.birth_date"),
        ({**NEW_PATIENT, "birth_date": "2999-01-01"}, "patient"),
        ({**NEW_PATIENT, "sex": "m"}, "patient.sex"),
    ],
)
def test_invalid_patients_are_422_naming_the_field(
    client: TestClient, auth: Auth, patient: dict[str, Any], field: str
) -> None:
    h = auth("doctor")
    response = client.post("/api/patients", headers=h, json={"patient": patient})
    error = _error(response)
    assert response.status_code == 422 and error["code"] == "invalid_input"
    assert any(d["field"].startswith(field) for d in error["details"])
    assert client.get("/api/patients/N001", headers=h).status_code == 404


def test_unknown_unit_is_422(client: TestClient, auth: Auth) -> None:
    body = {
        "patient": NEW_PATIENT,
        "observations": [
            {
                "id": "o1",
                "category": "laboratory",
                "name": "血糖",
                "value": 5.1,
                "unit": "mg/furlong",
                "effective_at": "2024-01-01T08:00",
            }
        ],
    }
    response = client.post("/api/patients", headers=auth("doctor"), json=body)
    assert response.status_code == 422
    assert any(d["field"] == "observations.0.unit" for d in _error(response)["details"])


def test_fhir_export_and_import(client: TestClient, auth: Auth, seeded: list[PatientChart]) -> None:
    h = auth("doctor")
    exported = client.get("/api/patients/P0000004/fhir", headers=h)
    assert exported.headers["content-type"].startswith("application/fhir+json")
    bundle = exported.json()
    assert bundle == json.loads(json.dumps(chart_to_bundle(seeded[3]), ensure_ascii=False))
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["telecom"] = [{"system": "phone", "value": "13800000000", "use": "mobile"}]
    # issue 15: an import never overwrites a stored value — a different phone is a 409, nothing written
    imported = client.post("/api/patients/fhir", headers=h, content=json.dumps(bundle))
    assert imported.status_code == 409, imported.text
    assert _error(imported)["code"] == "chart_resource_conflict"
    assert (
        client.get("/api/patients/P0000004", headers=h, params=REVEAL).json()["phone"]
        == seeded[3].patient.phone
    )
    same = client.post("/api/patients/fhir", headers=h, content=json.dumps(exported.json()))
    assert same.status_code == 201, same.text
    assert same.json()["patients"] == ["P0000004"] and same.json()["unchanged"] == ["P0000004"]


def test_malformed_fhir_writes_nothing(client: TestClient, auth: Auth, seeded: list[PatientChart]) -> None:
    h = auth("doctor")
    good = chart_to_bundle(PatientChart.model_validate({"patient": NEW_PATIENT}))
    bad_patient = {**NEW_PATIENT, "id": "N002", "id_number": None, "birth_date": "1990-01-01"}
    bad = chart_to_bundle(PatientChart.model_validate({"patient": bad_patient}))
    bad["entry"][0]["resource"]["birthDate"] = "1990-13-01"
    combined = {**good, "entry": good["entry"] + bad["entry"]}
    response = client.post("/api/patients/fhir", headers=h, content=json.dumps(combined))
    assert response.status_code == 422
    assert "entry[1].resource.birthDate" in json.dumps(_error(response)["details"])
    assert client.get("/api/patients/N001", headers=h).status_code == 404
    not_json = client.post("/api/patients/fhir", headers=h, content=b"{not json")
    assert not_json.status_code == 422 and _error(not_json)["code"] == "invalid_fhir"


def test_request_size_limit(client: TestClient, auth: Auth) -> None:
    big = b"{" + b" " * (11 * 1024 * 1024) + b"}"
    response = client.post("/api/patients/fhir", headers=auth("doctor"), content=big)
    assert response.status_code == 413 and _error(response)["code"] == "payload_too_large"


def test_unknown_patient_is_404(client: TestClient, auth: Auth) -> None:
    response = client.get("/api/patients/NOPE/chart", headers=auth("doctor"))
    assert response.status_code == 404 and _error(response)["code"] == "not_found"


def test_openapi_is_published(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/patients" in spec["paths"] and "/api/auth/token" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_docs_page_needs_no_internet(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "cdn.jsdelivr.net" not in page and "/docs-assets/swagger-ui-bundle.js" in page
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs-assets/swagger-ui.css").status_code == 200


def test_huge_offsets_are_refused_not_overflowed(client: TestClient, auth: Auth) -> None:
    # found by schemathesis: offset=9223372036854775808 overflowed SQLite's INTEGER into a 500
    response = client.get("/api/patients", headers=auth("doctor"), params={"offset": 2**63})
    assert response.status_code == 422 and _error(response)["details"][0]["field"] == "offset"
    audit = client.get("/api/audit", headers=auth("auditor"), params={"after_seq": 2**63})
    assert audit.status_code == 422


# --- versions (issue 15 part 2): history, vread, soft delete, merge mode ----------------------------------


def test_history_vread_and_a_soft_delete_with_a_reason(
    client: TestClient, auth: Auth, seeded: list[PatientChart]
) -> None:
    h = auth("doctor")
    chart = seeded[2]
    pid, condition = chart.patient.id, chart.conditions[0]
    url = f"/api/patients/{pid}/conditions/{condition.id}"
    no_reason = client.delete(url, headers=h)
    assert no_reason.status_code == 422, no_reason.text
    blank = client.delete(url, headers=h, params={"reason": "   "})
    assert blank.status_code == 422 and _error(blank)["code"] == "invalid_input"
    assert client.delete(url, headers=auth("public_health"), params={"reason": "x"}).status_code == 403
    done = client.delete(url, headers=h, params={"reason": "录入错误 entered in error"})
    assert done.status_code == 200, done.text
    assert done.json() == {
        "patient_id": pid,
        "kind": "conditions",
        "resource_id": condition.id,
        "version": 2,
        "deleted": True,
    }
    shown = client.get(f"/api/patients/{pid}/chart", headers=h, params=REVEAL).json()
    assert condition.id not in {c["id"] for c in shown["conditions"]}
    versions = client.get(f"{url}/_history", headers=h).json()
    assert [v["version"] for v in versions["items"]] == [2, 1]
    assert versions["items"][0]["deleted"] and versions["items"][0]["reason"] == "录入错误 entered in error"
    v1 = client.get(f"{url}/_history/1", headers=h).json()
    assert v1["body"] == condition.model_dump(mode="json") and v1["resource_type"] == "Condition"
    assert client.get(f"{url}/_history/9", headers=h).status_code == 404
    everything = client.get(f"/api/patients/{pid}/history", headers=h).json()
    assert everything["total"] == 1 + sum(len(v) for v in chart.children().values()) + 1  # + the delete
    assert client.get(f"/api/patients/{pid}/nonsense/{condition.id}/_history", headers=h).status_code == 422


def test_history_shows_demographics_as_the_role_sees_the_chart(
    client: TestClient, auth: Auth, seeded: list[PatientChart]
) -> None:
    patient = seeded[4].patient
    assert patient.id_number
    page = client.get(
        f"/api/patients/{patient.id}/history", headers=auth("public_health"), params={"kind": "patient"}
    )
    assert page.status_code == 200, page.text
    assert patient.id_number not in page.text


def test_import_merge_mode_over_the_api(client: TestClient, auth: Auth, seeded: list[PatientChart]) -> None:
    h = auth("doctor")
    chart = seeded[5]
    first = chart.observations[0]
    changed = first.model_copy(update={"value": (first.value or 0) + 3, "value_text": None})
    bundle = json.dumps(chart_to_bundle(chart.model_copy(update={"observations": [changed]})))
    refused = client.post("/api/patients/fhir", headers=h, content=bundle)
    assert refused.status_code == 409 and _error(refused)["code"] == "chart_resource_conflict"
    merged = client.post("/api/patients/fhir", headers=h, params={"mode": "merge"}, content=bundle)
    assert merged.status_code == 201, merged.text
    body = merged.json()
    assert body["mode"] == "merge" and body["resources_revised"] == 1
    assert body["revised"] == [
        {"resource": f"Observation/{first.id}", "fields": ["value"], "restored": False}
    ]
    history = client.get(
        f"/api/patients/{chart.patient.id}/observations/{first.id}/_history", headers=h
    ).json()
    assert [v["action"] for v in history["items"]] == ["merged", "created"]
    assert history["items"][1]["body"] == first.model_dump(mode="json")
