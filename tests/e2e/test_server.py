"""Drive a real ``medfusion serve`` process: the two-command experience and PII-free server logs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from medfusion.synth import generate_population

pytestmark = pytest.mark.e2e
DEMO_SIZE = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _medfusion(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medfusion", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    env = {**os.environ, "MEDFUSION_DATA_DIR": str(tmp_path / "var")}
    seeded = _medfusion("demo", "seed", "--size", str(DEMO_SIZE), env=env)
    assert seeded.returncode == 0, seeded.stderr
    port = _free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "medfusion", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                pytest.fail("server did not come up: " + log_path.read_text())
            credentials = json.loads((tmp_path / "var" / "demo-credentials.json").read_text())
            yield {"base": base, "credentials": credentials, "log": log_path, "seed_output": seeded.stdout}
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def test_demo_server_serves_secured_chinese_records_and_logs_no_pii(server: dict[str, Any]) -> None:
    base, creds = server["base"], server["credentials"]
    assert set(creds) == {
        f"demo_{r}" for r in ("doctor", "nurse", "manager", "public_health", "patient", "auditor", "admin")
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
