"""/api/audit — read, export and verify the hash-chained audit log (``audit:read``); reading and exporting
are audited too.

Times: entries are stored in UTC (``ts``, ISO 8601 with ``+00:00``). ``since`` / ``until`` take ISO 8601;
a time without an offset means the display zone (``MEDFUSION_TIMEZONE``, Asia/Shanghai by default), the
zone pages and the CLI show times in. The CSV export carries both the UTC time and the display-zone time
with the zone's name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from medfusion.api.deps import DB, requires
from medfusion.api.limits import MAX_OFFSET
from medfusion.store import audit
from medfusion.store.access import Permission, Principal
from medfusion.store.audit_export import csv_lines, parse_instant
from medfusion.store.database import Database

router = APIRouter(prefix="/api/audit", tags=["audit 审计"])


def _auditor(action: str) -> requires:
    return requires(Permission.audit_read, action, "需要审计权限 audit:read required")


Reading = Annotated[Principal, Depends(_auditor("audit.read"))]
Exporting = Annotated[Principal, Depends(_auditor("audit.export"))]
Verifying = Annotated[Principal, Depends(_auditor("audit.verify"))]
_TIME = (
    "ISO 8601, e.g. 2026-12-01T08:00; without an offset it is display-zone time "
    "(MEDFUSION_TIMEZONE, default Asia/Shanghai)"
)


def _query(
    patient_id: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=64, description="username")] = None,
    action: Annotated[
        str | None, Query(max_length=60, description="one action, or a prefix ending in '.' (user.)")
    ] = None,
    outcome: Annotated[str | None, Query(pattern="^(success|denied|failed|not_found)$")] = None,
    since: Annotated[str | None, Query(max_length=40, description="from (inclusive); " + _TIME)] = None,
    until: Annotated[str | None, Query(max_length=40, description="to (exclusive); " + _TIME)] = None,
) -> audit.AuditQuery:
    return audit.AuditQuery(
        patient_id=patient_id or None,
        actor=actor or None,
        action=action or None,
        outcome=outcome,
        since=parse_instant(since, "since"),
        until=parse_instant(until, "until"),
    )


Filters = Annotated[audit.AuditQuery, Depends(_query)]


@router.get("", response_model=list[audit.AuditEntry], summary="审计日志（时间为 UTC）")
def list_entries(
    db: DB,
    principal: Reading,
    filters: Filters,
    after_seq: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[audit.AuditEntry]:
    """Entries after ``after_seq``, oldest first, matching the filters."""
    with db.session() as session:
        rows = audit.entries(session, after_seq=after_seq, limit=limit, query=filters)
        audit.record(
            session,
            principal.actor,
            "audit.read",
            patient_id=filters.patient_id,
            detail={"count": len(rows), **filters.active()},
        )
    return rows


@router.get(
    "/export",
    summary="导出审计日志 CSV（UTC 与显示时区两列）",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "UTF-8 CSV with a byte-order mark"}},
)
def export_entries(db: DB, principal: Exporting, filters: Filters) -> StreamingResponse:
    """Every entry matching the filters, oldest first; the export is audited (``audit.export``)."""
    with db.session() as session:
        total, upto = audit.count(session, filters), audit.head_seq(session)
        audit.record(
            session,
            principal.actor,
            "audit.export",
            patient_id=filters.patient_id,
            detail={"count": total, "surface": "api", **filters.active()},
        )
    return StreamingResponse(
        _stream(db, filters, upto),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="medfusion-audit.csv"'},
    )


def _stream(db: Database, filters: audit.AuditQuery, upto: int) -> Iterator[str]:
    # a read session: a long export never holds SQLite's one writer; the log as it stood when counted
    with db.read_session() as session:
        yield from csv_lines(audit.matching(session, filters, upto=upto))


@router.get("/verify", response_model=audit.AuditVerification, summary="校验哈希链")
def verify_chain(db: DB, principal: Verifying) -> audit.AuditVerification:
    with db.session() as session:
        result = audit.verify(session)
    with db.session() as session:
        audit.record(
            session,
            principal.actor,
            "audit.verify",
            "success" if result.ok else "failed",
            detail={"entries": result.entries, "first_bad_seq": result.first_bad_seq},
        )
    return result
