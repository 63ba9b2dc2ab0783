"""Population generation and database load through the jobs layer, measured as a user runs them: the CLI in
a fresh process, timed end to end, with the peak resident memory of the largest process (parent or worker,
via ``getrusage(RUSAGE_CHILDREN)`` in a wrapper process)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

WRAPPER = (
    "import json, resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
    "print(json.dumps({'rc': rc, 'maxrss_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))"
)


def measure(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, sys.executable, "-m", "medfusion", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["rc"] != 0:
        raise RuntimeError(f"medfusion {' '.join(args)} failed: {done.stderr[-500:]}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(report["maxrss_kb"] / 1024, 1)}


def jsonl(sizes: list[int], executors: list[tuple[str, int]], workdir: Path) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        for executor, workers in executors:
            data_dir = workdir / f"var-{executor}-{size}"
            out = workdir / f"pop-{executor}-{size}.jsonl"
            env = {**os.environ, "MEDFUSION_DATA_DIR": str(data_dir), "RAY_AUTH_MODE": "disabled"}
            result = measure(
                [
                    "synth",
                    "population",
                    "--size",
                    str(size),
                    "--seed",
                    "2025",
                    "--quiet",
                    "--executor",
                    executor,
                    "--workers",
                    str(workers),
                    "--out",
                    str(out),
                ],
                env,
            )
            result.update(
                size=size,
                executor=executor,
                workers=workers,
                bytes=out.stat().st_size,
                residents_per_s=round(size / result["seconds"], 1),
            )
            rows.append(result)
            print("  population", json.dumps(result), flush=True)
            out.unlink()
            shutil.rmtree(data_dir, ignore_errors=True)
    return rows


def create_pg(base: str) -> tuple[str, str]:
    import psycopg

    name = f"medfusion_bench_{uuid.uuid4().hex[:8]}"
    admin = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.rpartition("/")[0] + "/" + name, name


def drop_pg(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_load(
    sizes: list[int], workdir: Path, keep: int | None = None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Load each size into a fresh SQLite file and a fresh PostgreSQL database; keep the ``keep``-sized
    databases for the API load test and return their URLs."""
    rows: list[dict[str, Any]] = []
    kept: dict[str, str] = {}
    pg_base = os.environ.get("MEDFUSION_TEST_PG_URL")
    for size in sizes:
        backends = [("sqlite", None)] + ([("postgresql", pg_base)] if pg_base else [])
        for backend, base in backends:
            data_dir = workdir / f"db-{backend}-{size}"
            env = {**os.environ, "MEDFUSION_DATA_DIR": str(data_dir)}
            pg_name = None
            if base:
                url, pg_name = create_pg(base)
                env["MEDFUSION_DATABASE_URL"] = url
            else:
                url = f"sqlite:///{data_dir / 'medfusion.db'}"
            result = measure(
                [
                    "synth",
                    "population",
                    "--size",
                    str(size),
                    "--seed",
                    "2025",
                    "--quiet",
                    "--into-db",
                    "--workers",
                    "2",
                    "--chunk-size",
                    "500",
                ],
                env,
            )
            result.update(
                size=size, backend=backend, workers=2, residents_per_s=round(size / result["seconds"], 1)
            )
            rows.append(result)
            print("  db-load", json.dumps(result), flush=True)
            if size == keep:
                kept[backend] = url
            elif pg_name and base:
                drop_pg(base, pg_name)
            else:
                shutil.rmtree(data_dir, ignore_errors=True)
    return rows, kept


def workspace() -> Path:
    return Path(tempfile.mkdtemp(prefix="medfusion-bench-", dir=os.environ.get("MEDFUSION_BENCH_DIR")))
