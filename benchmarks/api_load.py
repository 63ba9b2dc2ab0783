"""API under loopback load: N concurrent clients for T seconds against a real ``medfusion serve`` process,
patient search and chart reads, SQLite vs PostgreSQL on the same machine and data. Every request is a real
authorised access, so each also appends one entry to the hash-chained audit log."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from medfusion.store.access import Role
from medfusion.store.database import Database
from medfusion.store.users import create_user, get_user

PASSWORD = "bench-password-1"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙朱胡沈陆顾"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _drive(
    base: str,
    token: str,
    scenario: str,
    ids: list[str],
    clients: int,
    seconds: float,
    *,
    prefix: str = "/api",
    keep_latencies: bool = False,
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client_loop(seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30, limits=limits) as client:
            while time.perf_counter() < deadline:
                params: dict[str, str | int]
                if scenario == "search":
                    url, params = f"{prefix}/patients", {"name": rng.choice(SURNAMES), "limit": 20}
                else:
                    url, params = f"{prefix}/patients/{rng.choice(ids)}/chart", {}
                started = time.perf_counter()
                try:
                    response = await client.get(url, params=params)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += 0 if ok else 1

    await asyncio.gather(*(client_loop(i) for i in range(clients)))
    return summarise(scenario, latencies, errors, seconds) | (
        {"latencies": latencies} if keep_latencies else {}
    )


def summarise(scenario: str, latencies: list[float], errors: int, seconds: float) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
    }


def ensure_bench_user(url: str) -> list[str]:
    """Create the benchmark's doctor account once; return every patient id."""
    db = Database(url)
    try:
        with db.session() as session:
            if get_user(session, "bench_doctor") is None:
                create_user(session, "bench_doctor", PASSWORD, Role.doctor)
        with db.engine.connect() as conn:
            return [str(i) for i in conn.exec_driver_sql("SELECT id FROM patients").scalars()]
    finally:
        db.dispose()


def run(backends: dict[str, str], clients: int = 50, seconds: float = 60) -> list[dict[str, Any]]:
    rows = []
    for backend, url in backends.items():
        ids = ensure_bench_user(url)
        port = _free_port()
        data_dir = Path(url.replace("sqlite:///", "")).parent if url.startswith("sqlite") else Path("/tmp")
        env = {
            **os.environ,
            "MEDFUSION_DATABASE_URL": url,
            "MEDFUSION_DATA_DIR": str(data_dir),
            "MEDFUSION_LOG_LEVEL": "WARNING",
            "MEDFUSION_SECRET_KEY": "bench-key-" + "x" * 32,
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "medfusion", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            token = httpx.post(
                f"{base}/api/auth/token", data={"username": "bench_doctor", "password": PASSWORD}
            ).json()["access_token"]
            for scenario in ("search", "chart"):
                result = asyncio.run(_drive(base, token, scenario, ids, clients, seconds))
                result.update(backend=backend, clients=clients, seconds=seconds, patients=len(ids))
                rows.append(result)
                print("  api", result, flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return rows
