"""``medfusion serve --workers N`` on PostgreSQL: several processes, one audit chain (issue 15 part 7).

Two uvicorn workers serve concurrent authorised chart reads and patient searches; afterwards the chain
verifies (``medfusion audit verify`` exits 0) and holds exactly one entry per request — a ``success`` per
200 — with no gap and no fork. The token is signed with a key generated under the data directory, so a
token issued by one worker must verify in the other. Also: this process's SQLite writers queue on one
in-process gate (``Database.write_gate``), and one that cannot get it gets a typed error, not a hang."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from medfusion.errors import DatabaseUnavailable
from medfusion.store import database as database_module
from medfusion.store.access import Role
from medfusion.store.database import Database
from medfusion.store.patients import PatientRepository
from medfusion.store.tables import AuditHeadRow, AuditRow
from medfusion.store.users import create_user
from medfusion.synth import generate_population
from tests.conftest import PG_URL_ENV, _postgres_database

PASSWORD = "correct-horse-battery"
REQUESTS_PER_CLIENT = 12
CLIENTS = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pg_url() -> Iterator[str]:
    base = os.environ.get(PG_URL_ENV)
    if not base:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{PG_URL_ENV} must be set under CI=true (see .ci/run)")
        pytest.skip(f"{PG_URL_ENV} not set")
    yield from _postgres_database(base)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _medfusion(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medfusion", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_two_workers_on_postgresql_write_one_entry_per_request_to_one_chain(
    pg_url: str, tmp_path: Path
) -> None:
    db = Database(pg_url)
    db.upgrade()
    charts = list(generate_population(6, seed=11))
    with db.session() as session:
        PatientRepository(session).add_many(charts)
        create_user(session, "doctor", PASSWORD, Role.doctor)
    ids = [c.patient.id for c in charts]

    env = {**os.environ, "MEDFUSION_DATABASE_URL": pg_url, "MEDFUSION_DATA_DIR": str(tmp_path / "var")}
    env.pop("MEDFUSION_SECRET_KEY", None)  # a generated key: every worker must read the same one
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "medfusion", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        workers: list[int] = []
        for _ in range(900):  # until both workers are up (start-up time is not under test)
            assert server.poll() is None, log_path.read_text()
            workers = _children(server.pid)
            if len(workers) >= 2 and log_path.read_text().count("Application startup complete") >= 2:
                break
            time.sleep(0.2)
        assert len(workers) >= 2, log_path.read_text()
        assert httpx.get(f"{base}/health", timeout=10).status_code == 200

        with db.read_session() as session:
            before = session.execute(select(AuditHeadRow.seq)).scalar_one()

        def client(seed: int) -> list[int]:
            rng = random.Random(seed)
            statuses = []
            # a client of its own per thread: separate connections, spread over the workers by the kernel
            with httpx.Client(base_url=base, timeout=60) as http:
                login = http.post("/api/auth/token", data={"username": "doctor", "password": PASSWORD})
                assert login.status_code == 200, login.text
                http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
                for i in range(REQUESTS_PER_CLIENT):
                    if i % 2:
                        response = http.get("/api/patients", params={"name": rng.choice("王李张刘陈")})
                    else:
                        response = http.get(f"/api/patients/{rng.choice(ids)}/chart")
                    statuses.append(response.status_code)
            return statuses

        with ThreadPoolExecutor(CLIENTS) as pool:
            statuses = [s for batch in pool.map(client, range(CLIENTS)) for s in batch]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        log.close()

    assert statuses.count(200) == len(statuses) == CLIENTS * REQUESTS_PER_CLIENT
    with db.read_session() as session:
        written = session.execute(
            select(AuditRow.action, AuditRow.outcome, func.count())
            .where(AuditRow.seq > before)
            .group_by(AuditRow.action, AuditRow.outcome)
        ).all()
        after = session.execute(select(AuditHeadRow.seq)).scalar_one()
    counts = {(action, outcome): n for action, outcome, n in written}
    assert counts.pop(("auth.login", "success")) == CLIENTS
    assert counts == {
        ("chart.read", "success"): CLIENTS * REQUESTS_PER_CLIENT // 2,
        ("patient.search", "success"): CLIENTS * REQUESTS_PER_CLIENT // 2,
    }
    assert after - before == CLIENTS * (REQUESTS_PER_CLIENT + 1)  # no gap: every seq in between is used
    verified = _medfusion(env, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert f"{after} entries" in verified.stdout
    db.dispose()


def test_sqlite_writers_in_one_process_queue_on_the_gate_and_time_out_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    db.upgrade()
    monkeypatch.setattr(database_module, "WRITE_WAIT_SECONDS", 0.05)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.session():
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        with pytest.raises(DatabaseUnavailable), db.session() as session:
            session.execute(select(AuditHeadRow.seq))
    finally:
        release.set()
        holder.join(30)
    with db.session() as session:  # the gate is free again once the holder committed
        assert session.execute(select(AuditHeadRow.seq)).scalar_one() == 0
    db.dispose()
