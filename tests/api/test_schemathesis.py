"""Robustness: schemathesis generates requests for every operation in our OpenAPI schema — valid and
malformed — and none may produce a 5xx. Bounded: a fixed number of examples per operation, derandomized so
CI runs are reproducible (set MEDFUSION_FUZZ_EXAMPLES locally for a deeper, random run)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from medfusion.api.app import create_app
from medfusion.settings import Settings
from medfusion.store.access import Role
from medfusion.store.database import Database
from medfusion.store.patients import PatientRepository
from medfusion.store.users import create_user
from medfusion.synth import generate_population

EXAMPLES = int(os.environ.get("MEDFUSION_FUZZ_EXAMPLES", "25"))
PASSWORD = "schemathesis-pass"


def _app() -> tuple[FastAPI, str]:
    """An app on its own data directory (the schema is loaded when this module is imported)."""
    data_dir = Path(tempfile.mkdtemp(prefix="medfusion-schemathesis-"))
    app_settings = Settings(data_dir=data_dir, login_max_failures=10_000)
    db = Database(app_settings.resolved_database_url)
    db.upgrade()
    with db.session() as session:
        PatientRepository(session).add_many(list(generate_population(5, seed=99)))
        create_user(session, "fuzz_admin", PASSWORD, Role.admin)
    app = create_app(app_settings)
    with TestClient(app) as client:
        token = client.post("/api/auth/token", data={"username": "fuzz_admin", "password": PASSWORD}).json()
    return app, str(token["access_token"])


APP, TOKEN = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="MEDFUSION_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_with_a_server_error(case: Any) -> None:
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code < 500, (
        case.method,
        case.formatted_path,
        response.status_code,
        response.text[:300],
    )
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    if response.status_code >= 400 and content_type.startswith("application/json"):
        body = response.json()
        assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
