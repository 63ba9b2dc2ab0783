"""The audit log as CSV (the audit page's 导出, ``GET /api/audit/export``, ``medfusion audit export``).

Each row has the entry's stored UTC time and the same instant in the display zone with the zone's name
(the one formatting, :func:`medfusion.record.clinical_time.format_local`), the actor, the action, the
patient id, the outcome, the detail as JSON and the entry's hash, so an exported row can be checked
against the chain. Cells that a spreadsheet would run as a formula (``= + - @``, tab, CR) get a leading
``'`` (OWASP, CSV injection). The file starts with a UTF-8 byte-order mark so spreadsheet programs read the
Chinese text correctly. An export is itself audited (``audit.export``) by whoever calls it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from medfusion.errors import InvalidInput
from medfusion.record.clinical_time import display_zone, format_local
from medfusion.store.audit import AuditEntry

COLUMNS = (
    "seq",
    "time_local",
    "ts_utc",
    "actor",
    "role",
    "action",
    "patient_id",
    "outcome",
    "detail",
    "hash",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA) else value


def entry_time(entry: AuditEntry) -> datetime:
    """An entry's stored time (ISO 8601, UTC) as an aware instant."""
    return datetime.fromisoformat(entry.ts)


def _line(values: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue()


def csv_lines(entries: Iterable[AuditEntry]) -> Iterator[str]:
    """The header, then one CSV line per entry — a generator, so an export of any size streams."""
    yield "\ufeff" + _line(COLUMNS)
    for e in entries:
        yield _line(
            _cell(v)
            for v in (
                str(e.seq),
                format_local(entry_time(e), "%Y-%m-%d %H:%M:%S"),
                e.ts,
                e.actor,
                e.role,
                e.action,
                e.patient_id or "",
                e.outcome,
                json.dumps(e.detail, ensure_ascii=False, sort_keys=True),
                e.hash,
            )
        )


def parse_instant(text: str | None, field: str) -> datetime | None:
    """A time a user typed: ISO 8601 (``2026-12-01T08:00`` or with a date only); naive means the display
    zone, an offset is honoured. Returned in UTC."""
    if text is None or not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput.for_field(
            field,
            f"时间格式应为 YYYY-MM-DD[THH:MM]（{display_zone().key}）: {text[:40]!r}",
            code="invalid_time",
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=display_zone())
    return value.astimezone(UTC)
