"""/api/eval — start validation runs and read their results (managers and admins: ``evaluation:run``).

The routes check the permission and call :mod:`medfusion.evaluation.service`, which the web pages call too:
a run starts in a background thread and writes under ``data_dir/evaluations/<id>/`` exactly what
``medfusion eval run`` writes. Starting and reading are audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from medfusion.api.deps import DB, requires
from medfusion.evaluation.service import (
    EvalRunRequest,
    EvalRunStatus,
    evaluation_report_html,
    evaluation_runs,
    evaluation_status,
    start_run,
)
from medfusion.store.access import Permission, Principal

router = APIRouter(prefix="/api/eval", tags=["evaluation 验证中心"])
_NEEDS = "评测需要 evaluation:run 权限"


def _evaluator(action: str) -> requires:
    return requires(Permission.evaluation_run, action, _NEEDS)


Starting = Annotated[Principal, Depends(_evaluator("eval.start"))]
Listing = Annotated[Principal, Depends(_evaluator("eval.list"))]
Reading = Annotated[Principal, Depends(_evaluator("eval.read"))]
Reporting = Annotated[Principal, Depends(_evaluator("eval.report"))]


@router.post("/runs", response_model=EvalRunStatus, status_code=202, summary="启动一次评测（后台运行）")
def start(db: DB, principal: Starting, request: EvalRunRequest) -> EvalRunStatus:
    return start_run(db, principal, request)  # the service checks again: the web page starts runs too


@router.get("/runs", response_model=list[EvalRunStatus], summary="评测运行列表")
def runs(principal: Listing) -> list[EvalRunStatus]:
    return evaluation_runs()


@router.get("/runs/{run_id}", response_model=EvalRunStatus, summary="评测状态与结果")
def status(db: DB, principal: Reading, run_id: str) -> EvalRunStatus:
    return evaluation_status(db, principal, run_id)


@router.get("/runs/{run_id}/report", response_class=HTMLResponse, summary="评测报告（HTML）")
def report(principal: Reporting, run_id: str) -> HTMLResponse:
    return HTMLResponse(evaluation_report_html(run_id))
