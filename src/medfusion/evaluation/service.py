"""Validation runs started from the API and the web UI (managers and admins: ``evaluation:run``).

A run starts in a background thread and writes under ``data_dir/evaluations/<id>/`` exactly what
``medfusion eval run`` writes; reading returns its status, results and the HTML report. Starting and reading
are audited. The HTTP routes are in :mod:`medfusion.api.evaluation`, the pages in :mod:`medfusion.web.pages`;
both call these functions."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from medfusion.errors import InvalidInput, MedFusionError, NotFound
from medfusion.evaluation import runner
from medfusion.evaluation.availability import refuse_unrunnable
from medfusion.evaluation.registry import build, check, models_of
from medfusion.evaluation.suites import SUITES
from medfusion.jobs.checkpoint import atomic_write_bytes
from medfusion.settings import get_settings
from medfusion.store import audit
from medfusion.store.access import Permission, Principal
from medfusion.store.database import Database
from medfusion.store.tokens import require


class EvalRunRequest(BaseModel):
    suite: str = Field(max_length=40)
    target: str = Field(max_length=40)
    limit: int | None = Field(default=100, ge=1, le=100_000)
    seed: int = 0


class EvalRunStatus(BaseModel):
    id: str
    suite: str
    target: str
    state: Literal["running", "done", "failed"]
    started_at: datetime | None = None  # UTC; runs started before issue 16 have none
    user: str | None = None  # who started it
    error: str | None = None
    grade: str | None = None
    progress: dict[str, Any] | None = None  # while running: the dataset being answered, items done / total
    results: dict[str, Any] | None = None


def _audit(db: Database, principal: Principal, action: str, run_id: str) -> None:
    with db.session() as session:
        audit.record(session, principal.actor, action, audit.Outcome.success, detail={"run_id": run_id})


def _root() -> Path:
    root = get_settings().resolved_data_dir / "evaluations"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _status(folder: Path) -> EvalRunStatus:
    meta = json.loads((folder / "status.json").read_text(encoding="utf-8"))
    results = None
    if (folder / "results.json").exists():
        results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    return EvalRunStatus(**meta, results=results, grade=(results or {}).get("grade"))


def _write_status(folder: Path, **meta: Any) -> None:
    # replaced whole (write and rename): a reader polling the run never sees half a file
    atomic_write_bytes(folder / "status.json", json.dumps(meta, ensure_ascii=False).encode("utf-8"))


def _work(folder: Path, request: EvalRunRequest, run_id: str, started: dict[str, str]) -> None:
    def state(name: str, **extra: Any) -> None:
        _write_status(
            folder, id=run_id, suite=request.suite, target=request.target, state=name, **started, **extra
        )

    def progress(dataset: str, done: int, total: int) -> None:
        state("running", progress={"dataset": dataset, "done": done, "total": total})

    try:
        target = build(request.target)
        shared = get_settings().shared_data.expanduser().resolve()
        result = runner.run_suite(
            request.suite,
            target,
            shared,
            folder,
            models_of(target),
            request.limit,
            request.seed,
            progress=progress,
        )
        runner.write(result, folder)
        state("done")
    except MedFusionError as error:
        state("failed", error=f"{error.code}: {error.message}")
    except Exception as error:  # recorded for the reader; the server keeps serving
        state("failed", error=type(error).__name__)


def start_run(db: Database, principal: Principal, request: EvalRunRequest) -> EvalRunStatus:
    """Check and start a run in the background (the API and the web page both start runs here)."""
    require(db, principal, Permission.evaluation_run, "eval.start", "评测需要 evaluation:run 权限")
    suite = SUITES.get(request.suite)
    if suite is None or not suite.landed:
        reason = "unknown suite" if suite is None else f"module not landed: {suite.needs}"
        raise InvalidInput.for_field(
            "suite", f"无法运行评测集 {request.suite}: {reason}", code="suite_not_runnable"
        )
    check(request.target)
    refuse_unrunnable(request.suite, request.target)
    run_id = uuid.uuid4().hex
    folder = _root() / run_id
    folder.mkdir()
    started = {"started_at": datetime.now(UTC).isoformat(), "user": principal.username}
    _write_status(folder, id=run_id, suite=request.suite, target=request.target, state="running", **started)
    threading.Thread(target=_work, args=(folder, request, run_id, started), daemon=True).start()
    _audit(db, principal, "eval.start", run_id)
    return _status(folder)


def evaluation_status(db: Database, principal: Principal, run_id: str) -> EvalRunStatus:
    """One run's status and results; reading is audited."""
    found = _status(_folder(run_id))
    _audit(db, principal, "eval.read", run_id)
    return found


def evaluation_runs() -> list[EvalRunStatus]:
    """Every run, newest first, without its per-dataset results (the API list and the web page)."""
    folders = [p for p in _root().iterdir() if (p / "status.json").exists()]
    folders.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    return [_status(p).model_copy(update={"results": None}) for p in folders]


def evaluation_report_html(run_id: str) -> str:
    page = _folder(run_id) / "report.html"
    if not page.exists():
        raise NotFound("报告尚未生成 the report is not ready")
    return page.read_text(encoding="utf-8")


def _folder(run_id: str) -> Path:
    folder = _root() / run_id
    if not run_id.isalnum() or not (folder / "status.json").exists():
        raise NotFound(f"没有这次评测 no evaluation run {run_id}")
    return folder
