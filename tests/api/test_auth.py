from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import update

from medfusion.settings import get_settings
from medfusion.store.access import Role
from medfusion.store.database import get_database
from medfusion.store.tables import UserRow
from tests.api.conftest import PASSWORD

Auth = Callable[[str], dict[str, str]]


def test_health_needs_no_token(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["schema_revision"]


def test_token_from_form_and_json(client: TestClient) -> None:
    form = client.post("/api/auth/token", data={"username": "doctor", "password": PASSWORD})
    as_json = client.post("/api/auth/token", json={"username": "doctor", "password": PASSWORD})
    for response in (form, as_json):
        assert response.status_code == 200
        assert response.json()["token_type"] == "bearer" and response.json()["access_token"]


def test_wrong_password_and_unknown_user_are_the_same_401(client: TestClient) -> None:
    for username, password in (("doctor", "wrong-password"), ("nobody", PASSWORD)):
        response = client.post("/api/auth/token", data={"username": username, "password": password})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "authentication_failed"


def test_missing_credentials_are_422(client: TestClient) -> None:
    response = client.post("/api/auth/token", json={"username": "doctor"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_input"


def test_every_api_route_requires_a_token(client: TestClient) -> None:
    open_routes = {"/health", "/api/auth/token"}
    checked = 0
    for template, operations in client.get("/openapi.json").json()["paths"].items():
        if template in open_routes:
            continue
        path = template.replace("{patient_id}", "P0000001")
        for method in operations:
            response = client.request(method.upper(), path)
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.json()["error"]["code"] == "authentication_failed"
            checked += 1
    assert checked >= 12


def test_expired_and_forged_tokens_are_refused(client: TestClient) -> None:
    key = get_settings().signing_key()
    past = datetime.now(UTC) - timedelta(hours=2)
    expired = jwt.encode(
        {"sub": "doctor", "iat": past, "exp": past + timedelta(minutes=1)}, key, algorithm="HS256"
    )
    forged = jwt.encode(
        {"sub": "admin", "exp": datetime.now(UTC) + timedelta(hours=1)}, "not-the-key", algorithm="HS256"
    )
    r1 = client.get("/api/auth/me", headers={"Authorization": f"Bearer {expired}"})
    r2 = client.get("/api/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert (r1.status_code, r1.json()["error"]["code"]) == (401, "token_expired")
    assert (r2.status_code, r2.json()["error"]["code"]) == (401, "invalid_token")


def test_me(client: TestClient, auth: Auth) -> None:
    assert client.get("/api/auth/me", headers=auth("patient")).json()["patient_id"] == "P0000001"


def test_logins_are_audited(client: TestClient, auth: Auth) -> None:
    client.post("/api/auth/token", data={"username": "doctor", "password": "wrong-password"})
    entries = client.get("/api/audit", headers=auth("auditor"), params={"limit": 1000}).json()
    logins = [(e["actor"], e["outcome"]) for e in entries if e["action"] == "auth.login"]
    assert ("doctor", "denied") in logins and ("auditor", "success") in logins


def test_repeated_failures_lock_the_account(client: TestClient) -> None:
    for _ in range(5):
        assert (
            client.post("/api/auth/token", data={"username": "nurse", "password": "nope-nope"}).status_code
            == 401
        )
    locked = client.post("/api/auth/token", data={"username": "nurse", "password": PASSWORD})
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "account_locked"
    assert "locked_until" in locked.json()["error"]["details"]
    # other accounts are unaffected
    assert (
        client.post("/api/auth/token", data={"username": "doctor", "password": PASSWORD}).status_code == 200
    )


def test_a_success_resets_the_failure_count(client: TestClient) -> None:
    for _ in range(4):
        client.post("/api/auth/token", data={"username": "nurse", "password": "nope-nope"})
    assert client.post("/api/auth/token", data={"username": "nurse", "password": PASSWORD}).status_code == 200
    for _ in range(4):
        client.post("/api/auth/token", data={"username": "nurse", "password": "nope-nope"})
    assert client.post("/api/auth/token", data={"username": "nurse", "password": PASSWORD}).status_code == 200


def test_a_verified_token_still_expires(
    client: TestClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the signature is checked once per process and remembered; the expiry is checked on every use
    from medfusion.store import tokens

    headers = auth("doctor")
    assert client.get("/api/auth/me", headers=headers).status_code == 200
    later = time.time() + get_settings().token_ttl_minutes * 60 + 1
    monkeypatch.setattr(tokens, "_now", lambda: later)
    response = client.get("/api/auth/me", headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "token_expired")


def test_disabling_or_changing_a_role_takes_effect_on_the_next_request(
    client: TestClient, auth: Auth
) -> None:
    headers = auth("doctor")
    chart = "/api/patients/P0000001/chart"
    assert client.get(chart, headers=headers).status_code in (200, 404)  # token verified and remembered
    db = get_database(get_settings())
    with db.session() as session:
        session.execute(update(UserRow).where(UserRow.username == "doctor").values(role=Role.manager.value))
    assert client.get("/api/auth/me", headers=headers).json()["role"] == "manager"
    with db.session() as session:
        session.execute(update(UserRow).where(UserRow.username == "doctor").values(active=False))
    assert client.get("/api/auth/me", headers=headers).status_code == 401


def test_no_password_hashing_per_request(
    client: TestClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = auth("doctor")

    def refuse(*_: object, **__: object) -> bool:
        raise AssertionError("argon2 ran on an authorised request")

    monkeypatch.setattr(PasswordHasher, "verify", refuse)
    monkeypatch.setattr(PasswordHasher, "hash", refuse)
    for _ in range(3):
        assert client.get("/api/patients", headers=headers, params={"limit": 5}).status_code == 200


def test_a_change_made_outside_this_process_applies_within_the_account_cache_time(
    client: TestClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    # another worker process (here: plain sqlite3, which this process's hooks cannot see) disables the
    # account: this process keeps the standing it read for at most account_cache_seconds, then reads again
    import sqlite3

    from medfusion.store import tokens

    headers = auth("doctor")
    assert client.get("/api/auth/me", headers=headers).status_code == 200
    path = get_settings().resolved_database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as other:
        other.execute("UPDATE users SET active = 0 WHERE username = 'doctor'")
    assert client.get("/api/auth/me", headers=headers).status_code == 200  # within the cache time
    start = tokens._clock()
    monkeypatch.setattr(tokens, "_clock", lambda: start + get_settings().account_cache_seconds)
    response = client.get("/api/auth/me", headers=headers)
    assert response.status_code == 401


def test_with_no_account_cache_every_request_reads_the_account(
    client: TestClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    monkeypatch.setattr(get_settings(), "account_cache_seconds", 0.0)
    headers = auth("doctor")
    assert client.get("/api/auth/me", headers=headers).status_code == 200
    path = get_settings().resolved_database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as other:
        other.execute("UPDATE users SET active = 0 WHERE username = 'doctor'")
    assert client.get("/api/auth/me", headers=headers).status_code == 401
