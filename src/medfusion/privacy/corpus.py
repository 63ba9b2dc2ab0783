"""De-identify corpora: JSONL (rewrite one field per row, everything else untouched), TXT (every line) and
CSV (one column), row order kept. JSONL and TXT run as resumable jobs split at line boundaries; a chunk
that meets a bad row (invalid UTF-8, malformed JSON, a line over the size limit, a non-text field) records
the row number and reason, and the job then stops with the per-row error report — a row is never dropped
and never copied through un-de-identified. The summary report never goes into the output."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from medfusion.errors import InvalidInput
from medfusion.jobs.checkpoint import atomic_write_bytes, chunk_path
from medfusion.jobs.model import Chunk, ChunkReport, JobContext, JobKind
from medfusion.privacy.entities import STRUCTURED, EntityType
from medfusion.privacy.operators import Mode
from medfusion.privacy.pseudonyms import load_key
from medfusion.privacy.service import ENGINE, Deidentifier

MAX_LINE_BYTES = 8 * 1024 * 1024
CHUNK_BYTES = 4 * 1024 * 1024


class RowError(BaseModel):
    row: int
    reason: str


class CorpusReport(BaseModel):
    rows: int
    rows_without_field: int
    counts: dict[str, int]
    residual: dict[str, int]  # structured identifiers still found in the output (tag/mask modes)
    errors: list[RowError]
    seconds: float = 0.0
    bytes: int = 0
    provenance: dict[str, str] = {"path": "specialist", "engine": ENGINE}


def detect_format(path: Path, given: str | None) -> str:
    if given:
        return given
    suffix = path.suffix.lower()
    return {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".txt": "txt"}.get(suffix, "txt")


def _deidentifier(params: dict[str, Any]) -> Deidentifier:
    key = load_key(Path(params["key_file"])) if params.get("key_file") else None
    return Deidentifier(params["mode"], key)


def _residual(deid: Deidentifier, text: str, counter: Counter[str]) -> None:
    if deid.mode in (Mode.tag, Mode.mask):
        for span in deid.spans(text):
            if span.type in STRUCTURED and span.type is not EntityType.DATE:
                counter[span.type.value] += 1


def deid_line(
    raw: bytes,
    row: int,
    fmt: str,
    field: str,
    deid: Deidentifier,
    counts: Counter[str],
    residual: Counter[str],
) -> tuple[bytes | None, RowError | None, bool]:
    """One input line → (output line, error, had the field)."""
    if len(raw) > MAX_LINE_BYTES:
        return None, RowError(row=row, reason=f"行过长 line over {MAX_LINE_BYTES} bytes"), False
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, RowError(row=row, reason=f"不是 UTF-8 invalid UTF-8 at byte {exc.start}"), False
    ending = "\n" if line.endswith("\n") else ""
    body = line[:-1] if ending else line
    body = body[:-1] if body.endswith("\r") else body
    if fmt == "txt":
        result = deid.text(body)
        counts.update(result.counts)
        _residual(deid, result.text, residual)
        return (result.text + ending).encode("utf-8"), None, True
    if not body.strip():
        return None, RowError(row=row, reason="空行 empty JSONL row"), False
    try:
        record = json.loads(body)
    except ValueError as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        return None, RowError(row=row, reason=f"JSON 无效 malformed JSON: {reason}"), False
    if not isinstance(record, dict):
        return None, RowError(row=row, reason="JSONL 行须为对象 row is not an object"), False
    if field not in record:
        return raw, None, False  # nothing to rewrite: the row goes out byte for byte
    value = record[field]
    if not isinstance(value, str):
        return None, RowError(row=row, reason=f"字段 {field} 不是文本 field is not a string"), False
    result = deid.text(value)
    counts.update(result.counts)
    _residual(deid, result.text, residual)
    record[field] = result.text
    return (json.dumps(record, ensure_ascii=False) + ending).encode("utf-8"), None, True


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


def merge_reports(reports: list[CorpusReport]) -> CorpusReport:
    counts: Counter[str] = Counter()
    residual: Counter[str] = Counter()
    for r in reports:
        counts.update(r.counts)
        residual.update(r.residual)
    return CorpusReport(
        rows=sum(r.rows for r in reports),
        rows_without_field=sum(r.rows_without_field for r in reports),
        counts=dict(counts),
        residual=dict(residual),
        errors=[e for r in reports for e in r.errors][:100],
        bytes=sum(r.bytes for r in reports),
    )


def deid_csv(source: Path, target: Path, field: str, deid: Deidentifier) -> CorpusReport:
    """CSV stays in one process: quoted fields may span lines, so it cannot be split at line breaks."""
    try:
        text = source.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput.for_field("--in", f"不是 UTF-8 invalid UTF-8 at byte {exc.start}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None or field not in reader.fieldnames:
        raise InvalidInput.for_field("--field", f"CSV 没有列 {field!r} (columns: {reader.fieldnames})")
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=reader.fieldnames, lineterminator="\n")
    writer.writeheader()
    counts: Counter[str] = Counter()
    residual: Counter[str] = Counter()
    rows = 0
    for row in reader:
        rows += 1
        result = deid.text(row[field] or "")
        counts.update(result.counts)
        _residual(deid, result.text, residual)
        row[field] = result.text
        writer.writerow(row)
    atomic_write_bytes(target, out.getvalue().encode("utf-8"))
    return CorpusReport(
        rows=rows,
        rows_without_field=0,
        counts=dict(counts),
        residual=dict(residual),
        errors=[],
        bytes=len(text.encode("utf-8")),
    )
