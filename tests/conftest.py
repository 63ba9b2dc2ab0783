"""Shared fixtures: isolated data dirs, both database backends, datasets, demo charts."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from medfusion.knowledge import packs
from medfusion.record.models import PatientChart
from medfusion.settings import Settings, get_settings
from medfusion.store.database import Database, reset_database_cache
from medfusion.synth import generate_population
from tests.fakes.openai_server import FakeOpenAI

PG_URL_ENV = "MEDFUSION_TEST_PG_URL"

# Property tests assert what holds, never how fast: hypothesis's defaults (a 200 ms deadline per example, and
# the too_slow health check on generation time) fail a test when the machine is busy, not when the code is
# wrong. A test's own @settings still override these field by field (its suppress_health_check list replaces
# this one).
hypothesis_settings.register_profile(
    "medfusion", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
hypothesis_settings.load_profile("medfusion")


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own data dir and a fresh settings/database cache."""
    monkeypatch.setenv("MEDFUSION_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("MEDFUSION_DATABASE_URL", raising=False)
    monkeypatch.delenv("MEDFUSION_SECRET_KEY", raising=False)
    # tests start from an empty knowledge base; the pack tests install the shipped packs themselves
    monkeypatch.setenv("MEDFUSION_AUTOLOAD_PACKS", "false")
    # the evaluation CLI sets the math libraries' thread counts for its own process: restored after each test
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if key in os.environ:
            monkeypatch.setenv(key, os.environ[key])
        else:
            monkeypatch.delenv(key, raising=False)
    get_settings.cache_clear()
    reset_database_cache()
    yield
    get_settings.cache_clear()
    reset_database_cache()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var")


def _postgres_database(base_url: str) -> Iterator[str]:
    """A throwaway database on the test server, dropped afterwards."""
    import psycopg

    name = f"medfusion_t_{uuid.uuid4().hex[:12]}"
    admin = base_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    head, _, _ = admin.rpartition("/")
    try:
        yield f"{head}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Storage tests run on SQLite always and on PostgreSQL when MEDFUSION_TEST_PG_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    base = os.environ.get(PG_URL_ENV)
    if not base:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{PG_URL_ENV} must be set under CI=true (see .ci/run)")
        pytest.skip(f"{PG_URL_ENV} not set")
    yield from _postgres_database(base)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def demo_charts() -> list[PatientChart]:
    return list(generate_population(40, seed=7))


def shared_dataset(name: str) -> Path:
    """The public dataset folder, or skip (fail under CI=true) when it is absent."""
    root = Path(
        os.environ.get("MEDFUSION_SHARED_DATA", Path(__file__).resolve().parents[1] / "../shared/data")
    )
    folder = (root / name).resolve()
    if not folder.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"dataset {name} missing at {folder} (required under CI=true)")
        pytest.skip(f"dataset {name} not found at {folder}")
    return folder


@pytest.fixture(scope="session")
def _openai_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def openai_server(_openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The scripted OpenAI-compatible server on loopback, emptied for each test."""
    _openai_server.reset()
    yield _openai_server
    _openai_server.reset()


@pytest.fixture
def llm_env(openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    """MedFusion configured to use the fake server as its default model (short deadlines, no waiting)."""
    monkeypatch.setenv("MEDFUSION_LLM_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("MEDFUSION_LLM_MODEL", "fake-medical-7b")
    monkeypatch.setenv("MEDFUSION_LLM_TIMEOUT_SECONDS", "3")
    get_settings.cache_clear()
    return openai_server


@pytest.fixture(scope="session")
def _packed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("packed") / "packed.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    for pack in packs.shipped():
        packs.install(db, pack)
    db.dispose()  # the last connection's close checkpoints the WAL into the main file
    return path


@pytest.fixture
def packed_db(_packed_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """A private copy; ``MEDFUSION_DATABASE_URL`` points at it so CLI and API use the same data."""
    path = tmp_path / "packed.db"
    for suffix in ("", "-wal", "-shm"):
        source = _packed_template.with_name(_packed_template.name + suffix)
        if source.exists():
            shutil.copy(source, path.with_name(path.name + suffix))
    url = f"sqlite:///{path}"
    monkeypatch.setenv("MEDFUSION_DATABASE_URL", url)
    get_settings.cache_clear()
    reset_database_cache()
    db = Database(url)
    yield db
    db.dispose()


class PackedClient:
    """The API over the packed database; ``headers(role)`` signs in as a user of that role (made once)."""

    PASSWORD = "correct-horse-battery"

    def __init__(self, client: Any, db: Database) -> None:
        self.client = client
        self.db = db
        self._tokens: dict[str, dict[str, str]] = {}

    def headers(self, role: str) -> dict[str, str]:
        if role not in self._tokens:
            from medfusion.store.access import Role
            from medfusion.store.users import create_user

            with self.db.session() as session:
                create_user(session, role, self.PASSWORD, Role(role), None)
            token = self.client.post("/api/auth/token", data={"username": role, "password": self.PASSWORD})
            self._tokens[role] = {"Authorization": f"Bearer {token.json()['access_token']}"}
        return self._tokens[role]


@pytest.fixture
def packed_client(packed_db: Database) -> Iterator[PackedClient]:
    from fastapi.testclient import TestClient

    from medfusion.api.app import create_app

    with TestClient(create_app(get_settings())) as client:
        yield PackedClient(client, packed_db)
