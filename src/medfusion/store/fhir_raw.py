"""The raw FHIR resources an import received (``fhir_raw_resources``): appended, never overwritten.

``keep`` writes a resource as version 1, leaves an identical re-import alone, and appends the next version
when the same id arrives with other content; nothing is ever updated or deleted. ``latest`` gives each
resource's newest version for export (:func:`medfusion.interop.fhir.chart_to_bundle`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medfusion.interop.fhir.raw import RawResource, content_hash
from medfusion.store.tables import FhirRawResourceRow


@dataclass(frozen=True)
class RawKept:
    added: int
    unchanged: int


class FhirRawRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def keep(self, resources: Iterable[RawResource], *, at: datetime | None = None) -> RawKept:
        at = at or datetime.now(UTC)
        added = unchanged = 0
        for res in resources:
            digest = content_hash(res.body)
            newest = self._newest(res.patient_id, res.resource_type, res.resource_id)
            if newest is not None and newest.content_hash == digest and newest.model_hash == res.model_hash:
                unchanged += 1
                continue
            self.session.add(
                FhirRawResourceRow(
                    patient_id=res.patient_id,
                    resource_type=res.resource_type,
                    resource_id=res.resource_id,
                    version=(newest.version + 1) if newest is not None else 1,
                    json=res.body,
                    content_hash=digest,
                    model_hash=res.model_hash,
                    imported_at=at,
                )
            )
            self.session.flush()
            added += 1
        return RawKept(added=added, unchanged=unchanged)

    def _newest(self, patient_id: str | None, rtype: str, rid: str) -> FhirRawResourceRow | None:
        query = select(FhirRawResourceRow).where(
            FhirRawResourceRow.resource_type == rtype,
            FhirRawResourceRow.resource_id == rid,
            FhirRawResourceRow.patient_id.is_(None)
            if patient_id is None
            else FhirRawResourceRow.patient_id == patient_id,
        )
        return self.session.scalars(query.order_by(FhirRawResourceRow.version.desc()).limit(1)).first()

    def latest(self, patient_id: str) -> list[RawResource]:
        """Each resource of this patient at its newest version, in the order first received."""
        newest = (
            select(
                FhirRawResourceRow.resource_type,
                FhirRawResourceRow.resource_id,
                func.max(FhirRawResourceRow.version).label("version"),
                func.min(FhirRawResourceRow.seq).label("first"),
            )
            .where(FhirRawResourceRow.patient_id == patient_id)
            .group_by(FhirRawResourceRow.resource_type, FhirRawResourceRow.resource_id)
            .subquery()
        )
        rows = self.session.execute(
            select(FhirRawResourceRow, newest.c.first)
            .join(
                newest,
                (FhirRawResourceRow.resource_type == newest.c.resource_type)
                & (FhirRawResourceRow.resource_id == newest.c.resource_id)
                & (FhirRawResourceRow.version == newest.c.version),
            )
            .where(FhirRawResourceRow.patient_id == patient_id)
            .order_by(newest.c.first)
        ).all()
        return [_raw(row) for row, _first in rows]

    def history(self, patient_id: str | None, resource_type: str, resource_id: str) -> list[RawResource]:
        """Every version received of one resource, oldest first."""
        query = select(FhirRawResourceRow).where(
            FhirRawResourceRow.resource_type == resource_type,
            FhirRawResourceRow.resource_id == resource_id,
            FhirRawResourceRow.patient_id.is_(None)
            if patient_id is None
            else FhirRawResourceRow.patient_id == patient_id,
        )
        return [_raw(r) for r in self.session.scalars(query.order_by(FhirRawResourceRow.version))]


def _raw(row: FhirRawResourceRow) -> RawResource:
    return RawResource(
        patient_id=row.patient_id,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        body=row.json,
        model_hash=row.model_hash,
        version=row.version,
    )
