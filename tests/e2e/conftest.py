"""Shared e2e fixtures: a real ``medfusion serve`` process on a free port with demo data."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp_path = tmp_path_factory.mktemp("e2e")
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
