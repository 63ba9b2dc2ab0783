"""De-identify corpora: JSONL (rewrite one field per row, everything else untouched), TXT (every line) and
CSV (one column), row order kept. A bad row (invalid UTF-8, malformed JSON, a line over the size limit, a
non-text field) is reported with its row number and reason — a row is never dropped and never copied through
un-de-identified. The summary report never goes into the output.

This module is the engine (one line in, one line out; one CSV in, one CSV out). JSONL and TXT run as resumable
jobs split at line boundaries: the job kind composes this engine with ``medfusion.jobs`` and lives with the
command that runs it, :mod:`medfusion.cli.deid_jobs` (the data layer's modules do not import one another)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

from pydantic import BaseModel

from medfusion.errors import InvalidInput
from medfusion.privacy.entities import STRUCTURED, EntityType
from medfusion.privacy.operators import Mode
from medfusion.privacy.service import ENGINE, Deidentifier

MAX_LINE_BYTES = 8 * 1024 * 1024


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


def deid_csv(data: bytes, field: str, deid: Deidentifier) -> tuple[bytes, CorpusReport]:
    """A whole CSV file → (de-identified CSV, report). CSV stays in one process: quoted fields may span
    lines, so it cannot be split at line breaks."""
    try:
        text = data.decode("utf-8-sig")
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
    return out.getvalue().encode("utf-8"), CorpusReport(
        rows=rows,
        rows_without_field=0,
        counts=dict(counts),
        residual=dict(residual),
        errors=[],
        bytes=len(text.encode("utf-8")),
    )
