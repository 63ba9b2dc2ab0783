"""Shared e2e fixtures: a real ``medfusion serve`` process on a free port with demo data, headless Chromium
(Debian's ``chromium`` through Playwright) and the axe-core check every browser test uses."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

DEMO_SIZE = 20
CHROMIUM = os.environ.get("MEDFUSION_CHROMIUM", "/usr/bin/chromium")
# Flags for a closed network: without them Chromium keeps trying to reach Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


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


def _missing(what: str) -> NoReturn:
    """Under CI a missing browser piece fails the run; elsewhere the browser tests skip, naming it."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests need {what}")
    pytest.skip(f"browser tests need {what}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module; each test opens its own page or context."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package (dev extras)")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _missing(f"Chromium at {CHROMIUM} (Debian package 'chromium'; .ci/run installs it)")
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def axe_serious(page: Any) -> list[tuple[str, list[Any]]]:
    """axe-core's serious and critical violations on the page as it stands: (rule id, first three targets)."""
    try:
        from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
    except ImportError:
        _missing("axe-playwright-python (dev extras) for the accessibility check")
    violations = Axe().run(page).response["violations"]
    return [
        (v["id"], [n["target"] for n in v["nodes"]][:3])
        for v in violations
        if v["impact"] in {"serious", "critical"}
    ]
