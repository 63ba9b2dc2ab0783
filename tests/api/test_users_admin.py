"""/api/users administration and /api/audit filters and export (issue 16)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime

from fastapi.testclient import TestClient

from medfusion.record.clinical_time import display_zone
from tests.api.conftest import PASSWORD

Auth = Callable[[str], dict[str, str]]


def _token(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_disable_and_enable_through_the_api(client: TestClient, auth: Auth) -> None:
    admin, doctor = auth("admin"), auth("doctor")
    assert client.post("/api/users/doctor/disable", headers=admin).json()["active"] is False
    assert client.get("/api/auth/me", headers=doctor).status_code == 401
    enabled = client.post("/api/users/doctor/enable", headers=admin)
    assert enabled.status_code == 200 and enabled.json()["active"] is True
    revoked = client.get("/api/auth/me", headers=doctor)  # the old session stays ended
    assert (revoked.status_code, revoked.json()["error"]["code"]) == (401, "token_revoked")
    assert client.get("/api/auth/me", headers=_token(client, "doctor")).status_code == 200


def test_reset_password_then_the_user_must_change_it(client: TestClient, auth: Auth) -> None:
    admin, old = auth("admin"), auth("nurse")
    reset = client.post(
        "/api/users/nurse/password", headers=admin, json={"temporary_password": "temp-pass-1"}
    )
    assert reset.status_code == 200 and reset.json()["must_change_password"] is True
    assert client.get("/api/auth/me", headers=old).status_code == 401
    signed = client.post("/api/auth/token", data={"username": "nurse", "password": "temp-pass-1"}).json()
    assert signed["must_change_password"] is True
    temporary = {"Authorization": f"Bearer {signed['access_token']}"}
    blocked = client.get("/api/patients", headers=temporary)
    assert (blocked.status_code, blocked.json()["error"]["code"]) == (403, "password_change_required")
    wrong = client.post(
        "/api/users/me/password",
        headers=temporary,
        json={"current_password": "nope-nope-1", "new_password": "mine-and-only-1"},
    )
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "wrong_password")
    changed = client.post(
        "/api/users/me/password",
        headers=temporary,
        json={"current_password": "temp-pass-1", "new_password": "mine-and-only-1"},
    )
    assert changed.status_code == 200 and changed.json()["must_change_password"] is False
    fresh = {"Authorization": f"Bearer {changed.json()['access_token']}"}
    assert client.get("/api/patients", headers=fresh).status_code == 200
    assert client.get("/api/patients", headers=temporary).status_code == 401
    assert client.get("/api/patients", headers=_token(client, "nurse", "mine-and-only-1")).status_code == 200


def test_unlock_lets_a_locked_out_user_in_now(client: TestClient, auth: Auth) -> None:
    for _ in range(5):
        client.post("/api/auth/token", data={"username": "doctor", "password": "wrong-password"})
    locked = client.post("/api/auth/token", data={"username": "doctor", "password": PASSWORD})
    assert locked.status_code == 429
    listed = {u["username"]: u for u in client.get("/api/users", headers=auth("admin")).json()}
    assert listed["doctor"]["locked_until"] is not None and listed["nurse"]["locked_until"] is None
    assert client.post("/api/users/doctor/unlock", headers=auth("admin")).status_code == 200
    assert (
        client.post("/api/auth/token", data={"username": "doctor", "password": PASSWORD}).status_code == 200
    )


def test_change_role_and_force_sign_out(client: TestClient, auth: Auth) -> None:
    admin, doctor = auth("admin"), auth("doctor")
    changed = client.put("/api/users/doctor/role", headers=admin, json={"role": "pharmacist"})
    assert changed.status_code == 200 and changed.json()["role"] == "pharmacist"
    assert client.get("/api/auth/me", headers=doctor).json()["role"] == "pharmacist"
    assert client.put("/api/patients/P0000002", headers=doctor, json={}).status_code in (403, 422)
    patient_without_record = client.put("/api/users/doctor/role", headers=admin, json={"role": "patient"})
    assert patient_without_record.status_code == 422
    assert client.post("/api/users/doctor/sign-out", headers=admin).status_code == 200
    assert client.get("/api/auth/me", headers=doctor).json()["error"]["code"] == "token_revoked"
    assert client.post("/api/users/nobody_here/sign-out", headers=admin).status_code == 404


def test_the_last_admin_is_kept_and_only_admins_administer(client: TestClient, auth: Auth) -> None:
    admin = auth("admin")
    for response in (
        client.post("/api/users/admin/disable", headers=admin),
        client.put("/api/users/admin/role", headers=admin, json={"role": "doctor"}),
    ):
        assert (response.status_code, response.json()["error"]["code"]) == (409, "last_admin")
    for role in ("doctor", "pharmacist", "auditor", "manager"):
        assert client.post("/api/users/nurse/disable", headers=auth(role)).status_code == 403
    entries = client.get(
        "/api/audit", headers=auth("auditor"), params={"action": "user.", "limit": 1000}
    ).json()
    seen = {(e["actor"], e["action"], e["outcome"]) for e in entries}
    assert ("admin", "user.disable", "failed") in seen and ("admin", "user.role", "failed") in seen
    assert ("pharmacist", "user.disable", "denied") in seen
    assert {e["action"] for e in entries} <= {"user.disable", "user.role"}


def test_audit_filters_by_user_action_patient_and_time(client: TestClient, auth: Auth) -> None:
    doctor, auditor = auth("doctor"), auth("auditor")
    client.get("/api/patients/P0000003/chart", headers=doctor)
    found = client.get(
        "/api/audit",
        headers=auditor,
        params={"actor": "doctor", "action": "chart.read", "patient_id": "P0000003"},
    ).json()
    assert found and {(e["actor"], e["action"], e["patient_id"]) for e in found} == {
        ("doctor", "chart.read", "P0000003")
    }
    logins = client.get(
        "/api/audit", headers=auditor, params={"action": "auth.", "outcome": "success"}
    ).json()
    assert logins and all(e["action"] == "auth.login" and e["outcome"] == "success" for e in logins)
    # a time without an offset is display-zone time; entries are stored in UTC
    first = datetime.fromisoformat(found[0]["ts"]).astimezone(display_zone())
    local = first.replace(tzinfo=None).isoformat(timespec="microseconds")
    since = client.get("/api/audit", headers=auditor, params={"since": local, "action": "chart.read"}).json()
    until = client.get("/api/audit", headers=auditor, params={"until": local, "action": "chart.read"}).json()
    assert [e["seq"] for e in since] == [found[0]["seq"]] and until == []
    bad = client.get("/api/audit", headers=auditor, params={"since": "yesterday"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_time")


def test_audit_export_is_csv_with_both_times_and_is_audited(client: TestClient, auth: Auth) -> None:
    auditor = auth("auditor")
    client.get("/api/patients/P0000004/chart", headers=auth("doctor"))
    response = client.get("/api/audit/export", headers=auditor, params={"patient_id": "P0000004"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    text = response.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and {r["patient_id"] for r in rows} == {"P0000004"}
    zone = datetime.now(display_zone()).tzname()
    row = rows[0]
    stored = datetime.fromisoformat(row["ts_utc"])
    assert row["time_local"] == f"{stored.astimezone(display_zone()):%Y-%m-%d %H:%M:%S} {zone}"
    assert row["ts_utc"].endswith("+00:00") and len(row["hash"]) == 64
    exports = client.get("/api/audit", headers=auditor, params={"action": "audit.export"}).json()
    assert exports[-1]["actor"] == "auditor" and exports[-1]["detail"]["count"] == len(rows)
    assert exports[-1]["detail"]["patient_id"] == "P0000004"
    assert client.get("/api/audit/export", headers=auth("doctor")).status_code == 403


def test_csv_cells_that_would_run_as_formulas_are_quoted() -> None:
    from medfusion.store.audit import AuditEntry
    from medfusion.store.audit_export import csv_lines

    entry = AuditEntry(
        seq=1,
        ts="2026-12-01T00:00:00.000000+00:00",
        actor='=HYPERLINK("x")',
        role="-1",
        action="@a",
        patient_id="+1",
        outcome="success",
        detail={},
        prev_hash="0" * 64,
        hash="f" * 64,
    )
    lines = list(csv_lines([entry]))
    assert lines[0].startswith("\ufeffseq,time_local")
    row = next(csv.reader(io.StringIO(lines[1])))
    assert row[1] == "2026-12-01 08:00:00 CST"
    assert [row[3], row[4], row[5], row[6]] == ['\'=HYPERLINK("x")', "'-1", "'@a", "'+1"]
