"""Population generation as batch jobs: to JSONL/FHIR files, or straight into the database.

These job kinds compose three data-layer modules — ``synth`` (the residents), ``jobs`` (chunks and
checkpoints) and ``store`` (the database job) — which may not import one another, so they live here, with the
command that runs them (``medfusion synth population``). Workers re-create them by import path
(``medfusion.cli.population_jobs:PopulationToFile``); job ids depend only on the kind's name and parameters.

File job: each chunk of residents is written to its own file atomically, and ``finish`` concatenates them in
order — so the output is the same bytes whatever the executor, worker count or number of interruptions.
Database job: each chunk commits its patients, one audit entry and its ``job_chunks`` marker in a single
transaction, so a chunk is loaded exactly once however often the job is resumed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from medfusion.jobs.checkpoint import atomic_write_bytes, chunk_path
from medfusion.jobs.model import Chunk, ChunkReport, JobContext, JobKind, even_chunks
from medfusion.record.models import PatientChart
from medfusion.store import audit
from medfusion.store.database import Database
from medfusion.store.job_chunks import chunk_committed, commit_marker
from medfusion.store.patients import PatientRepository
from medfusion.store.resource_versions import WriteContext
from medfusion.synth.lines import resident_line
from medfusion.synth.population import generate_record

_databases: dict[str, Database] = {}


def _database(url: str) -> Database:
    """One engine per worker process."""
    if url not in _databases:
        _databases[url] = Database(url)
    return _databases[url]


class PopulationToFile(JobKind):
    """params: size, seed, format (jsonl|fhir), id_prefix, plant_pii, chunk_size, out."""

    name = "synth-population"

    def chunks(self, params: dict[str, Any]) -> list[Chunk]:
        return even_chunks(int(params["size"]), int(params["chunk_size"]))

    def _file(self, chunk: Chunk, ctx: JobContext) -> Path:
        return chunk_path(ctx.job_dir, chunk.index, ".jsonl")

    def run_chunk(self, params: dict[str, Any], chunk: Chunk, ctx: JobContext) -> ChunkReport:
        started = time.perf_counter()
        lines = [
            resident_line(
                int(params["seed"]), i, params["format"], params["id_prefix"], bool(params["plant_pii"])
            )
            for i in range(chunk.start, chunk.start + chunk.count)
        ]
        data = ("\n".join(lines) + "\n").encode("utf-8")
        atomic_write_bytes(self._file(chunk, ctx), data)
        return ChunkReport(
            index=chunk.index, items=chunk.count, bytes=len(data), seconds=time.perf_counter() - started
        )

    def is_done(self, params: dict[str, Any], chunk: Chunk, ctx: JobContext) -> bool:
        return self._file(chunk, ctx).exists()

    def finish(self, params: dict[str, Any], chunks: list[Chunk], ctx: JobContext) -> str:
        out = Path(params["out"])
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial")
        with partial.open("wb") as sink:
            for chunk in chunks:
                with self._file(chunk, ctx).open("rb") as source:
                    while block := source.read(1 << 20):
                        sink.write(block)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(partial, out)
        for chunk in chunks:
            self._file(chunk, ctx).unlink(missing_ok=True)
        return str(out)


class PopulationToDatabase(JobKind):
    """params: size, seed, id_prefix, chunk_size."""

    name = "synth-population-db"

    def chunks(self, params: dict[str, Any]) -> list[Chunk]:
        return even_chunks(int(params["size"]), int(params["chunk_size"]))

    def run_chunk(self, params: dict[str, Any], chunk: Chunk, ctx: JobContext) -> ChunkReport:
        started = time.perf_counter()
        charts = [
            PatientChart.model_validate(generate_record(int(params["seed"]), i, params["id_prefix"]))
            for i in range(chunk.start, chunk.start + chunk.count)
        ]
        db = _database(ctx.database_url)
        with db.session() as session:
            if chunk_committed(session, ctx.job_id, chunk.index):  # another worker won a retry race
                return ChunkReport(index=chunk.index, items=0)
            PatientRepository(session, WriteContext(f"job:{ctx.job_id}", self.name)).add_many(charts)
            audit.record(
                session,
                audit.Actor(f"job:{ctx.job_id}"[:64], "system"),
                "patient.bulk_create",
                detail={"chunk": chunk.index, "first": charts[0].patient.id, "count": len(charts)},
            )
            commit_marker(session, ctx.job_id, chunk.index, len(charts))
        return ChunkReport(index=chunk.index, items=len(charts), seconds=time.perf_counter() - started)

    def is_done(self, params: dict[str, Any], chunk: Chunk, ctx: JobContext) -> bool:
        with _database(ctx.database_url).session() as session:
            return chunk_committed(session, ctx.job_id, chunk.index)

    def finish(self, params: dict[str, Any], chunks: list[Chunk], ctx: JobContext) -> str:
        return f"{sum(c.count for c in chunks)} residents in the database"
