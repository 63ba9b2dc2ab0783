"""Executors run chunks: ``inline`` (this process), ``local`` (a process pool, the default) or ``ray``.

Workers receive the job kind's import path, its parameters, the chunk and the context — plain data — and
re-create the kind by import, so the same job code runs unchanged on any of them.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from enum import StrEnum
from multiprocessing.connection import Connection
from typing import Any

from medfusion.errors import InvalidInput
from medfusion.jobs.checkpoint import discard_partial_writes
from medfusion.jobs.model import Chunk, ChunkReport, JobContext, JobKind
from medfusion.settings import child_environment, get_settings, set_process_default


class ExecutorName(StrEnum):
    inline = "inline"
    local = "local"
    ray = "ray"


def load_kind(path: str) -> JobKind:
    module, _, attr = path.partition(":")
    kind_cls = getattr(importlib.import_module(module), attr)
    kind: JobKind = kind_cls()
    return kind


def run_one(
    kind_path: str, params: dict[str, Any], chunk: dict[str, Any], ctx: dict[str, Any]
) -> dict[str, Any]:
    """The worker entry point (module-level so process pools and Ray can ship it)."""
    kind = load_kind(kind_path)
    report = kind.run_chunk(params, Chunk.model_validate(chunk), JobContext.model_validate(ctx))
    return report.model_dump()


Submit = Callable[[list[Chunk]], Iterator[ChunkReport]]
# the math libraries' thread pools (OpenMP, OpenBLAS, MKL): each spins on every core it is given, so N worker
# processes each starting a pool of all cores oversubscribe the machine — measured: an evaluation of the ask
# pipeline (query embeddings) on 2 local workers took 109 s instead of 7 s
_MATH_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def worker_threads(workers: int) -> dict[str, str]:
    """Each worker's share of the cores for its math libraries (at least one)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return dict.fromkeys(_MATH_THREADS, str(max(1, cpus // max(workers, 1))))


def _inline(kind_path: str, params: dict[str, Any], ctx: JobContext, workers: int) -> Submit:
    def submit(chunks: list[Chunk]) -> Iterator[ChunkReport]:
        for chunk in chunks:
            yield ChunkReport.model_validate(
                run_one(kind_path, params, chunk.model_dump(), ctx.model_dump(mode="json"))
            )

    return submit


PARENT_DIED_EXIT = 70  # a pool worker's exit status when it stops because the parent that ran the job died


def _exit_when_parent_dies(lifeline: Connection) -> None:
    """Block until the parent's end of the lifeline closes — its death — then end this worker at once.

    Nothing is ever sent. Only the parent holds the write end (not inheritable: no other process has it) and
    the kernel closes it however the parent ends, ``kill -9`` included, so ``recv`` sees EOF at once."""
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv_bytes()
    discard_partial_writes()  # a chunk half-written to its temporary name: nothing would ever read it
    os._exit(PARENT_DIED_EXIT)


def _watch_parent(lifeline: Connection) -> None:
    """The pool's worker initializer: a daemon thread that ends the worker when the parent dies.

    Without it a worker whose parent was killed waits forever on the task queue (it holds that pipe's write
    end itself, so it never sees EOF): two workers of a killed ``synth population`` stayed for 12+ minutes."""
    threading.Thread(
        target=_exit_when_parent_dies, args=(lifeline,), name="medfusion-lifeline", daemon=True
    ).start()


def _local(kind_path: str, params: dict[str, Any], ctx: JobContext, workers: int) -> Submit:
    def submit(chunks: list[Chunk]) -> Iterator[ChunkReport]:
        # spawn, not fork: the parent may hold database connections a forked child must not share
        spawn = multiprocessing.get_context("spawn")
        # workers get the read end of the lifeline; this process keeps the write end until the pool is done
        lifeline, keepalive = spawn.Pipe(duplex=False)
        with (
            keepalive,
            lifeline,
            child_environment(worker_threads(workers)),
            ProcessPoolExecutor(
                max_workers=workers, mp_context=spawn, initializer=_watch_parent, initargs=(lifeline,)
            ) as pool,
        ):
            pending: set[Future[dict[str, Any]]] = set()
            queue = list(chunks)
            ctx_data = ctx.model_dump(mode="json")
            while queue or pending:
                while queue and len(pending) < workers * 2:
                    pending.add(pool.submit(run_one, kind_path, params, queue.pop(0).model_dump(), ctx_data))
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield ChunkReport.model_validate(future.result())

    return submit


def _ray(kind_path: str, params: dict[str, Any], ctx: JobContext, workers: int) -> Submit:
    try:
        import ray
    except ImportError:
        raise InvalidInput.for_field(
            "--executor", "需要安装 ray 扩展 the ray executor needs: pip install 'medfusion[ray]'"
        ) from None

    def submit(chunks: list[Chunk]) -> Iterator[ChunkReport]:
        if not ray.is_initialized():
            address = get_settings().ray_address or None
            if address is None:
                # a local node waits on its own GCS server; on a busy small machine it can take longer than
                # Ray's 30 s to publish its port (seen on 2 cores under a test run): wait up to 120 s
                set_process_default("RAY_gcs_server_port_wait_time_s", "120")
            ray.init(
                address=address,
                num_cpus=None if address else workers,
                include_dashboard=False,
                log_to_driver=False,
                ignore_reinit_error=True,
            )
        # on a cluster each node has its own cores: one task's share of this machine is the local default
        remote = ray.remote(run_one).options(runtime_env={"env_vars": worker_threads(workers)})
        ctx_data = ctx.model_dump(mode="json")
        queue = list(chunks)
        pending: list[Any] = []
        while queue or pending:
            while queue and len(pending) < workers * 2:
                pending.append(remote.remote(kind_path, params, queue.pop(0).model_dump(), ctx_data))
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                yield ChunkReport.model_validate(ray.get(ref))

    return submit


EXECUTORS = {ExecutorName.inline: _inline, ExecutorName.local: _local, ExecutorName.ray: _ray}
