"""/api/audit — read and verify the hash-chained audit log (``audit:read``); reading it is audited too."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from medfusion.api.deps import DB, requires
from medfusion.api.limits import MAX_OFFSET
from medfusion.store import audit
from medfusion.store.access import Permission, Principal

router = APIRouter(prefix="/api/audit", tags=["audit 审计"])


def _auditor(action: str) -> requires:
    return requires(Permission.audit_read, action, "需要审计权限 audit:read required")


Reading = Annotated[Principal, Depends(_auditor("audit.read"))]
Verifying = Annotated[Principal, Depends(_auditor("audit.verify"))]


@router.get("", response_model=list[audit.AuditEntry], summary="审计日志")
def list_entries(
    db: DB,
    principal: Reading,
    patient_id: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    after_seq: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[audit.AuditEntry]:
    with db.session() as session:
        rows = audit.entries(session, patient_id=patient_id, actor=actor, after_seq=after_seq, limit=limit)
        audit.record(
            session, principal.actor, "audit.read", patient_id=patient_id, detail={"count": len(rows)}
        )
    return rows


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
