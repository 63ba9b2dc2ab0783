from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from medfusion.api.app import create_app
from medfusion.record.models import PatientChart
from medfusion.settings import get_settings
from medfusion.store.access import Role
from medfusion.store.database import get_database
from medfusion.store.patients import PatientRepository
from medfusion.store.users import create_user

PASSWORD = "correct-horse-battery"


@pytest.fixture
def seeded(demo_charts: list[PatientChart]) -> list[PatientChart]:
    db = get_database(get_settings())
    charts = demo_charts[:12]
    with db.session() as session:
        PatientRepository(session).add_many(charts)
        for role in Role:
            create_user(
                session, role.value, PASSWORD, role, charts[0].patient.id if role is Role.patient else None
            )
    return charts


@pytest.fixture
def client(seeded: list[PatientChart]) -> Iterator[TestClient]:
    with TestClient(create_app(get_settings())) as test_client:
        yield test_client


@pytest.fixture
def auth(client: TestClient) -> Callable[[str], dict[str, str]]:
    def headers(username: str) -> dict[str, str]:
        response = client.post("/api/auth/token", data={"username": username, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return headers
