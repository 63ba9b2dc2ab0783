"""Run a job: skip chunks already done, run the rest on the chosen executor, then finish once.

Rerunning the same job (same kind and parameters → same job id) after a crash or ``kill -9`` resumes it:
finished chunks are never redone, unfinished ones are redone from scratch, so nothing is lost or duplicated.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medfusion.jobs.checkpoint import JobDir, job_id_for
from medfusion.jobs.executors import EXECUTORS, ExecutorName
from medfusion.jobs.model import JobContext, JobKind, JobResult

Progress = Callable[[int, int], None]  # (items done, items total)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def run_job(
    kind: JobKind,
    params: dict[str, Any],
    *,
    data_dir: Path,
    database_url: str,
    executor: ExecutorName | str = ExecutorName.local,
    workers: int | None = None,
    job_id: str | None = None,
    progress: Progress | None = None,
) -> JobResult:
    started = time.perf_counter()
    executor = ExecutorName(executor)
    workers = workers or default_workers()
    chunks = kind.chunks(params)
    identity = kind.identity(params)
    job_id = job_id or job_id_for(kind.name, identity)
    job_dir = JobDir(data_dir, job_id)
    job_dir.open(kind.name, identity, len(chunks))
    ctx = JobContext(job_id=job_id, job_dir=job_dir.path, database_url=database_url)
    total = sum(c.count for c in chunks)
    todo = [c for c in chunks if not kind.is_done(params, c, ctx)]
    done_items = total - sum(c.count for c in todo)
    if progress:
        progress(done_items, total)
    submit = EXECUTORS[executor](kind.import_path(), params, ctx, workers)
    try:
        for report in submit(todo):
            done_items += report.items
            if progress:
                progress(done_items, total)
        output = kind.finish(params, chunks, ctx)
    except BaseException:
        job_dir.mark("interrupted")
        raise
    job_dir.mark("completed", output=output)
    return JobResult(
        job_id=job_id,
        kind=kind.name,
        chunks=len(chunks),
        chunks_run=len(todo),
        chunks_resumed=len(chunks) - len(todo),
        items=total,
        seconds=time.perf_counter() - started,
        executor=executor.value,
        workers=workers if executor is not ExecutorName.inline else 1,
        output=output,
    )
