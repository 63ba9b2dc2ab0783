"""Corpus de-identification as a resumable job (``medfusion privacy deid`` on JSONL and TXT files).

The job kind composes the de-identification engine (:mod:`medfusion.privacy.corpus`) with the job runner
(``medfusion.jobs``); the data layer's modules do not import one another, so the composition lives with the
command that runs it. Workers re-create it by import path (``medfusion.cli.deid_jobs:DeidCorpus``); the job id
depends only on the kind's name (``privacy-deid``) and parameters.

The input is split into byte ranges ending at line breaks; a chunk that meets a bad row records the row number
and reason, and the job then stops with the per-row error report — nothing is written.
"""

from __future__ import annotations

import io
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from medfusion.errors import InvalidInput
from medfusion.jobs.checkpoint import atomic_write_bytes, chunk_path
from medfusion.jobs.model import Chunk, ChunkReport, JobContext, JobKind
from medfusion.privacy.corpus import CorpusReport, RowError, deid_line, merge_reports
from medfusion.privacy.pseudonyms import load_key
from medfusion.privacy.service import Deidentifier

CHUNK_BYTES = 4 * 1024 * 1024


def _deidentifier(params: dict[str, Any]) -> Deidentifier:
    key = load_key(Path(params["key_file"])) if params.get("key_file") else None
    return Deidentifier(params["mode"], key)


def line_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> list[Chunk]:
    """Byte ranges ending at line breaks; ``count`` is the byte length, ``start`` the byte offset."""
    size = path.stat().st_size
    chunks: list[Chunk] = []
    with path.open("rb") as fh:
        start = 0
        while start < size:
            fh.seek(min(size, start + chunk_bytes))
            fh.readline()
            end = min(size, fh.tell()) if start + chunk_bytes < size else size
            chunks.append(Chunk(index=len(chunks), start=start, count=end - start))
            start = end
    return chunks


class DeidCorpus(JobKind):
    """params: input, output, format (jsonl|txt), field, mode, key_file, input_size, input_mtime."""

    name = "privacy-deid"

    def chunks(self, params: dict[str, Any]) -> list[Chunk]:
        return line_chunks(Path(params["input"]), int(params.get("chunk_bytes", CHUNK_BYTES)))

    def _paths(self, chunk: Chunk, ctx: JobContext) -> tuple[Path, Path]:
        base = chunk_path(ctx.job_dir, chunk.index)
        return base.with_suffix(".out"), base.with_suffix(".json")

    def run_chunk(self, params: dict[str, Any], chunk: Chunk, ctx: JobContext) -> ChunkReport:
        started = time.perf_counter()
        deid = _deidentifier(params)
        with Path(params["input"]).open("rb") as fh:
            fh.seek(chunk.start)
            data = fh.read(chunk.count)
        out = io.BytesIO()
        counts: Counter[str] = Counter()
        residual: Counter[str] = Counter()
        errors: list[RowError] = []
        rows = without = 0
        for offset, raw in enumerate(data.splitlines(keepends=True)):
            rows += 1
            # row numbers are chunk-local here; finish() makes them global
            line, error, had_field = deid_line(
                raw, offset + 1, params["format"], params["field"], deid, counts, residual
            )
            if error:
                errors.append(error)
            elif line is not None:
                out.write(line)
                without += not had_field
        output, report = self._paths(chunk, ctx)
        summary = CorpusReport(
            rows=rows,
            rows_without_field=without,
            counts=dict(counts),
            residual=dict(residual),
            errors=errors[:100],
            bytes=chunk.count,
        )
        atomic_write_bytes(output, out.getvalue())
        atomic_write_bytes(report, summary.model_dump_json().encode())  # written last: marks the chunk done
        return ChunkReport(
            index=chunk.index, items=chunk.count, bytes=chunk.count, seconds=time.perf_counter() - started
        )

    def is_done(self, params: dict[str, Any], chunk: Chunk, ctx: JobContext) -> bool:
        return self._paths(chunk, ctx)[1].exists()

    def finish(self, params: dict[str, Any], chunks: list[Chunk], ctx: JobContext) -> str:
        reports = [CorpusReport.model_validate_json(self._paths(c, ctx)[1].read_text()) for c in chunks]
        errors: list[RowError] = []
        rows_before = 0
        for report in reports:
            errors.extend(RowError(row=rows_before + e.row, reason=e.reason) for e in report.errors)
            rows_before += report.rows
        if errors:
            raise InvalidInput(
                f"{len(errors)} 行无法处理，未写出任何内容 {len(errors)} rows could not be de-identified; "
                f"nothing written (first: row {errors[0].row}: {errors[0].reason})",
                details=[e.model_dump() for e in errors[:50]],
                code="invalid_rows",
            )
        out = Path(params["output"])
        partial = out.with_name(f".{out.name}.partial")
        with partial.open("wb") as sink:
            for chunk in chunks:
                sink.write(self._paths(chunk, ctx)[0].read_bytes())
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(partial, out)
        total = merge_reports(reports)
        (ctx.job_dir / "report.json").write_text(total.model_dump_json(indent=1))
        return str(out)
