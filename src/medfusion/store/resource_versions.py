"""Resource history: every version of demographics and of each chart resource, as FHIR ``_history`` keeps it.

A write never loses what the record held: each create, update, merge, soft delete or restore of a resource
appends one ``resource_versions`` row holding the resource's full content at that version, who wrote it
(the audit actor), when, through which path (``source``: ``fhir.import``, ``chart.replace`` …), why
(``reason``; required for a delete) and which fields differ from the prior version. Version n−1 is the
prior content of version n. Rows are only ever inserted.

FHIR R4 §3.1.0.1.6 (RESTful API, history): "the history … includes deleted resources"; a delete is a
version too, so a soft-deleted resource stays readable here while the chart hides it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from medfusion.interop.fhir.export import RESOURCE_TYPES
from medfusion.record.models import CHILD_KINDS
from medfusion.store.tables import ResourceVersionRow

PATIENT_KIND = "patient"
ResourceKind = Literal[
    "patient",
    "encounters",
    "conditions",
    "observations",
    "procedures",
    "medications",
    "allergies",
    "immunizations",
    "notes",
]
KINDS: tuple[str, ...] = (PATIENT_KIND, *CHILD_KINDS)


class VersionAction(StrEnum):
    created = "created"
    updated = "updated"  # a write through the chart API (update, replace, write-back)
    merged = "merged"  # an import in merge mode (or an additive import filling demographics)
    deleted = "deleted"  # soft delete: hidden from the chart, kept here
    restored = "restored"  # a deleted resource written again


@dataclass(frozen=True)
class WriteContext:
    """Who writes, through which path, and why — stamped on every version row a write appends.
    ``source`` None: the repository method's own name (``chart.replace`` …)."""

    actor: str = "system"
    source: str | None = None
    reason: str | None = None


class ResourceVersion(BaseModel):
    """One version of one resource (``GET …/_history``)."""

    patient_id: str
    kind: ResourceKind
    resource_type: str = Field(examples=["Observation"], description="FHIR resource type")
    resource_id: str
    version: int = Field(ge=1)
    action: VersionAction
    at: datetime
    actor: str
    source: str
    reason: str | None = None
    changes: list[str] = Field(default_factory=list, description="fields that differ from the prior version")
    deleted: bool = Field(description="the resource is deleted as of this version")
    body: dict[str, Any] = Field(description="the resource's full content at this version")


class HistoryPage(BaseModel):
    patient_id: str
    total: int
    items: list[ResourceVersion]


def resource_type(kind: str) -> str:
    return "Patient" if kind == PATIENT_KIND else RESOURCE_TYPES[kind]


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """Top-level fields whose values differ (field names only: the values are in the two versions)."""
    if before is None:
        return []
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def version_values(
    *,
    patient_id: str,
    kind: str,
    resource_id: str,
    version: int,
    action: VersionAction,
    body: dict[str, Any],
    writer: WriteContext,
    source: str,
    at: datetime,
    changes: Sequence[str] = (),
) -> dict[str, Any]:
    return {
        "patient_id": patient_id,
        "kind": kind,
        "resource_id": resource_id,
        "version": version,
        "action": action.value,
        "at": at,
        "actor": writer.actor[:120],
        "source": (writer.source or source)[:60],
        "reason": writer.reason,
        "changes": list(changes),
        "body": body,
    }


def append(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert version rows (one multi-row INSERT) inside the caller's transaction."""
    if rows:
        session.execute(insert(ResourceVersionRow), list(rows))


def _of(row: ResourceVersionRow) -> ResourceVersion:
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)  # SQLite hands back naive UTC
    return ResourceVersion(
        patient_id=row.patient_id,
        kind=row.kind,
        resource_type=resource_type(row.kind),
        resource_id=row.resource_id,
        version=row.version,
        action=VersionAction(row.action),
        at=at,
        actor=row.actor,
        source=row.source,
        reason=row.reason,
        changes=list(row.changes or []),
        deleted=row.action == VersionAction.deleted.value,
        body=dict(row.body),
    )


def history(
    session: Session,
    patient_id: str,
    *,
    kind: str | None = None,
    resource_id: str | None = None,
    limit: int = 500,
    offset: int = 0,
) -> tuple[int, list[ResourceVersion]]:
    """A chart's versions, newest first (FHIR ``_history`` order); narrowed to one kind or resource."""
    query = select(ResourceVersionRow).where(ResourceVersionRow.patient_id == patient_id)
    if kind is not None:
        query = query.where(ResourceVersionRow.kind == kind)
    if resource_id is not None:
        query = query.where(ResourceVersionRow.resource_id == resource_id)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(
        query.order_by(
            ResourceVersionRow.at.desc(),
            ResourceVersionRow.kind,
            ResourceVersionRow.resource_id,
            ResourceVersionRow.version.desc(),
        )
        .limit(limit)
        .offset(offset)
    ).scalars()
    return total, [_of(row) for row in rows]
