"""What a job is: a kind of work split into numbered chunks, each done exactly once.

A :class:`JobKind` says how to split its parameters into chunks, how to do one chunk (in a worker process,
atomically: a chunk is either wholly done and recorded, or not at all), how to tell a chunk is done, and how
to finish once every chunk is. The runner knows nothing else about the work, so population generation,
corpus de-identification, indexing and evaluations share one engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from pydantic import BaseModel


class Chunk(BaseModel):
    index: int
    start: int
    count: int


class ChunkReport(BaseModel):
    index: int
    items: int
    bytes: int = 0
    seconds: float = 0.0


class JobContext(BaseModel):
    """Where a worker finds state: passed explicitly so Ray workers need no shared environment."""

    job_id: str
    job_dir: Path
    database_url: str


class JobResult(BaseModel):
    job_id: str
    kind: str
    chunks: int
    chunks_run: int
    chunks_resumed: int
    items: int
    seconds: float
    executor: str
    workers: int
    output: str | None = None


class JobKind(ABC):
    """Subclass per kind of work; instances carry no state (workers re-create them by import path)."""

    name: str = "job"
    # parameters that change how the work runs but not what it produces (threads per worker): left out of
    # the job id and of the check that a reopened job directory holds the same job
    tuning: frozenset[str] = frozenset()

    @abstractmethod
    def chunks(self, params: dict[str, Any]) -> list[Chunk]: ...

    @abstractmethod
    def run_chunk(self, params: dict[str, Any], chunk: Chunk, ctx: JobContext) -> ChunkReport:
        """Do one chunk atomically. Runs in a worker; must be deterministic for the same inputs."""

    @abstractmethod
    def is_done(self, params: dict[str, Any], chunk: Chunk, ctx: JobContext) -> bool: ...

    def finish(self, params: dict[str, Any], chunks: list[Chunk], ctx: JobContext) -> str | None:
        """Runs once in the parent after every chunk is done; returns a description of the output."""
        return None

    def identity(self, params: dict[str, Any]) -> dict[str, Any]:
        """The parameters that name the job (its id and its directory's check): all but the tuning ones."""
        return {k: v for k, v in params.items() if k not in self.tuning}

    @classmethod
    def import_path(cls) -> str:
        return f"{cls.__module__}:{cls.__qualname__}"


def even_chunks(total: int, size: int, offset: int = 0) -> list[Chunk]:
    return [
        Chunk(index=i, start=offset + start, count=min(size, total - start))
        for i, start in enumerate(range(0, total, size))
    ]
