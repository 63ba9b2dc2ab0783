"""/api/eval — start validation runs and read their results (managers and admins: ``evaluation:run``).

A run starts in a background thread and writes under ``data_dir/evaluations/<id>/`` exactly what
``medfusion eval run`` writes; reading returns its status, results and the HTML report. Starting and reading
are audited."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from medfusion.api.auth import DB, CurrentPrincipal, require
from medfusion.errors import InvalidInput, MedFusionError, NotFound
from medfusion.evaluation import runner
from medfusion.evaluation.registry import build, check, models_of
from medfusion.evaluation.suites import SUITES
from medfusion.jobs.checkpoint import atomic_write_bytes
from medfusion.settings import get_settings
from medfusion.store import audit
from medfusion.store.access import Permission, Principal
from medfusion.store.database import Database

router = APIRouter(prefix="/api/eval", tags=["evaluation 验证中心"])
_ID = r"^[0-9a-f]{32}$"


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


def _work(folder: Path, request: EvalRunRequest, run_id: str) -> None:
    def state(name: str, **extra: Any) -> None:
        _write_status(folder, id=run_id, suite=request.suite, target=request.target, state=name, **extra)

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
    run_id = uuid.uuid4().hex
    folder = _root() / run_id
    folder.mkdir()
    _write_status(folder, id=run_id, suite=request.suite, target=request.target, state="running")
    threading.Thread(target=_work, args=(folder, request, run_id), daemon=True).start()
    _audit(db, principal, "eval.start", run_id)
    return _status(folder)


@router.post("/runs", response_model=EvalRunStatus, status_code=202, summary="启动一次评测（后台运行）")
def start(db: DB, principal: CurrentPrincipal, request: EvalRunRequest) -> EvalRunStatus:
    return start_run(db, principal, request)


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


@router.get("/runs", response_model=list[EvalRunStatus], summary="评测运行列表")
def runs(db: DB, principal: CurrentPrincipal) -> list[EvalRunStatus]:
    require(db, principal, Permission.evaluation_run, "eval.list", "评测需要 evaluation:run 权限")
    return evaluation_runs()


def _folder(run_id: str) -> Path:
    folder = _root() / run_id
    if not run_id.isalnum() or not (folder / "status.json").exists():
        raise NotFound(f"没有这次评测 no evaluation run {run_id}")
    return folder


@router.get("/runs/{run_id}", response_model=EvalRunStatus, summary="评测状态与结果")
def status(db: DB, principal: CurrentPrincipal, run_id: str) -> EvalRunStatus:
    require(db, principal, Permission.evaluation_run, "eval.read", "评测需要 evaluation:run 权限")
    found = _status(_folder(run_id))
    _audit(db, principal, "eval.read", run_id)
    return found


@router.get("/runs/{run_id}/report", response_class=HTMLResponse, summary="评测报告（HTML）")
def report(db: DB, principal: CurrentPrincipal, run_id: str) -> HTMLResponse:
    require(db, principal, Permission.evaluation_run, "eval.report", "评测需要 evaluation:run 权限")
    return HTMLResponse(evaluation_report_html(run_id))
