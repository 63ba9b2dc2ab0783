"""Our API against its floor, side by side in one run (issue 15 part 7).

The floor is a bare FastAPI application that reads the same rows with the same SQLAlchemy engine settings
(:func:`medfusion.store.database.make_engine`) and returns them as JSON — no token, no permission check,
no audit entry, no access log. It is served by uvicorn with the same settings as ``medfusion serve`` (same
log config, no access log, no server header, same worker count), on the same database, and driven by the
same 50 clients as our endpoints. What ours costs above the floor is what auth, permission, audit and our
models cost.

With ``MEDFUSION_TEST_PG_URL`` set, ours and the floor are then served by 2 and 4 uvicorn workers on
PostgreSQL; after each of our runs the audit chain is verified and the entries written during the run are
counted against the requests that returned 200 (no lost entry, no fork).

``python -m benchmarks.run api_floor`` runs it; ``python -m benchmarks.api_floor --port P [--workers N]``
serves the floor alone (the database from ``MEDFUSION_DATABASE_URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from benchmarks.api_load import PASSWORD, _drive, _free_port, ensure_bench_user, summarise
from medfusion.errors import NotFound
from medfusion.settings import get_settings
from medfusion.store.database import Database
from medfusion.store.patients import chart_bodies
from medfusion.store.tables import AuditHeadRow, AuditRow, PatientRow

_SUMMARY = ("id", "name", "sex", "birth_date", "id_number", "phone", "address")


def floor_app() -> FastAPI:
    """The floor, as a factory (uvicorn imports it by name in every worker)."""
    db = Database(get_settings().resolved_database_url)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/floor/patients/{patient_id}/chart")
    def chart(patient_id: str) -> JSONResponse:
        # the very read ours makes (store.patients.chart_bodies), returned as stored
        with db.read_session() as session:
            try:
                body, parts = chart_bodies(session, patient_id)
            except NotFound:
                raise HTTPException(404) from None
        return JSONResponse({"patient": body, **parts})

    @app.get("/floor/patients")
    def search(
        name: str | None = None, limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0)
    ) -> JSONResponse:
        where = [PatientRow.name.like(f"%{name}%")] if name else []
        with db.read_session() as session:
            total = session.execute(select(func.count(PatientRow.id)).where(*where)).scalar_one()
            bodies = session.execute(
                select(PatientRow.body).where(*where).order_by(PatientRow.id).limit(limit).offset(offset)
            ).scalars()
            items = [{k: b.get(k) for k in _SUMMARY} for b in bodies]
        return JSONResponse({"total": total, "items": items})

    return app


def _wait_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become healthy")


def _env(url: str, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MEDFUSION_DATABASE_URL": url,
        "MEDFUSION_DATA_DIR": str(data_dir),
        "MEDFUSION_LOG_LEVEL": "WARNING",
        "MEDFUSION_SECRET_KEY": "bench-key-" + "x" * 32,
    }


def _start(kind: str, url: str, data_dir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    if kind == "ours":
        args = [sys.executable, "-m", "medfusion", "serve", "--port", str(port)]
    else:
        args = [sys.executable, "-m", "benchmarks.api_floor", "--port", str(port)]
    if workers > 1:
        args += ["--workers", str(workers)]
    server = subprocess.Popen(
        args,
        env=_env(url, data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parent.parent,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, server)
    except BaseException:
        server.kill()
        server.wait(timeout=30)
        raise
    return server, base


def _audit_head(db: Database) -> int:
    with db.read_session() as session:
        return int(session.execute(select(AuditHeadRow.seq).where(AuditHeadRow.id == 1)).scalar_one())


def _audit_check(db: Database, after_seq: int, ok_requests: int, all_requests: int) -> dict[str, Any]:
    """The chain verifies, and the run wrote one success entry per 200 and one entry per request."""
    from medfusion.store import audit

    with db.read_session() as session:
        verification = audit.verify(session)
        written = session.execute(
            select(AuditRow.outcome, func.count()).where(AuditRow.seq > after_seq).group_by(AuditRow.outcome)
        ).all()
    by_outcome = {str(outcome): int(n) for outcome, n in written}
    return {
        "verify_ok": verification.ok,
        "chain_entries": verification.entries,
        "entries_written": sum(by_outcome.values()),
        "success_entries": by_outcome.get("success", 0),
        "requests_200": ok_requests,
        "requests": all_requests,
        "one_entry_per_request": by_outcome.get("success", 0) == ok_requests
        and sum(by_outcome.values()) == all_requests,
    }


def _pair(
    backend: str,
    url: str,
    data_dir: Path,
    workers: int,
    clients: int,
    seconds: float,
    ids: list[str],
    scenarios: tuple[str, ...],
    rounds: int,
) -> list[dict[str, Any]]:
    """Both servers up at once, driven in turn for ``seconds / rounds`` at a time, so load from other
    work on the machine falls on ours and the floor alike; latencies are pooled over the rounds."""
    rows: list[dict[str, Any]] = []
    db = Database(url)
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for kind in ("ours", "floor"):
            servers[kind] = _start(kind, url, data_dir, workers)
        token = httpx.post(
            f"{servers['ours'][1]}/api/auth/token", data={"username": "bench_doctor", "password": PASSWORD}
        ).json()["access_token"]
        tokens, prefixes = {"ours": token, "floor": ""}, {"ours": "/api", "floor": "/floor"}
        for scenario in scenarios:
            pooled: dict[str, dict[str, Any]] = {
                k: {"latencies": [], "errors": 0, "warm_requests": 0, "warm_errors": 0} for k in servers
            }
            before = _audit_head(db)
            for _ in range(rounds):
                for kind, (_, base) in servers.items():
                    warm = asyncio.run(
                        _drive(base, tokens[kind], scenario, ids, clients, 2, prefix=prefixes[kind])
                    )
                    pooled[kind]["warm_requests"] += warm["requests"]
                    pooled[kind]["warm_errors"] += warm["errors"]
                    part = asyncio.run(
                        _drive(
                            base,
                            tokens[kind],
                            scenario,
                            ids,
                            clients,
                            seconds / rounds,
                            prefix=prefixes[kind],
                            keep_latencies=True,
                        )
                    )
                    pooled[kind]["latencies"] += part["latencies"]
                    pooled[kind]["errors"] += part["errors"]
            for kind, got in pooled.items():
                result = summarise(scenario, got["latencies"], got["errors"], seconds)
                result.update(
                    endpoint=kind, backend=backend, workers=workers, clients=clients, seconds=seconds
                )
                rows.append(result)
            ours, warm = rows[-2], pooled["ours"]
            # every request to ours since `before`, warm-ups included, must have exactly one entry
            ours["audit"] = _audit_check(
                db,
                before,
                ours["requests"] - ours["errors"] + warm["warm_requests"] - warm["warm_errors"],
                ours["requests"] + warm["warm_requests"],
            )
            print("  api_floor", ours, "\n  api_floor", rows[-1], flush=True)
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(timeout=60)
        db.dispose()
    return rows


def _ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for ours in (r for r in rows if r["endpoint"] == "ours"):
        floor = next(
            r
            for r in rows
            if r["endpoint"] == "floor"
            and (r["backend"], r["workers"], r["scenario"])
            == (ours["backend"], ours["workers"], ours["scenario"])
        )
        out.append(
            {
                "backend": ours["backend"],
                "workers": ours["workers"],
                "scenario": ours["scenario"],
                "p50_x_floor": round(ours["p50_ms"] / floor["p50_ms"], 2),
                "p99_x_floor": round(ours["p99_ms"] / floor["p99_ms"], 2),
                "throughput_x_floor": round(ours["requests_per_s"] / floor["requests_per_s"], 2),
            }
        )
    return out


def run(
    sqlite_url: str,
    pg_url: str | None = None,
    *,
    clients: int = 50,
    seconds: float = 30,
    pg_workers: tuple[int, ...] = (2, 4),
    scenarios: tuple[str, ...] = ("search", "chart"),
    rounds: int = 3,
) -> dict[str, Any]:
    """Ours vs the floor on one SQLite process, then on PostgreSQL with each worker count."""
    targets = [("sqlite", sqlite_url, 1)] + [("postgresql", pg_url, n) for n in pg_workers if pg_url]
    rows: list[dict[str, Any]] = []
    for backend, url, workers in targets:
        assert url is not None
        ids = ensure_bench_user(url)
        data_dir = Path(url.replace("sqlite:///", "")).parent if url.startswith("sqlite") else Path("/tmp")
        rows += _pair(backend, url, data_dir, workers, clients, seconds, ids, scenarios, rounds)
    return {"runs": rows, "ratios": _ratios(rows), "patients": len(ids)}


def main() -> None:
    parser = argparse.ArgumentParser(description="serve the floor application")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    options = parser.parse_args()
    import uvicorn

    from medfusion.logs import log_config

    uvicorn.run(
        "benchmarks.api_floor:floor_app",
        factory=True,
        # a worker still importing the app (seconds on a busy machine) is not a hung one;
        # uvicorn's default 5 s health check killed and restarted workers during start-up
        timeout_worker_healthcheck=30,
        host=options.host,
        port=options.port,
        workers=options.workers if options.workers > 1 else None,
        log_config=log_config("WARNING"),
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
