"""Patient-record access as one service: permission and scope checks, the work, and the audit entry.

Both surfaces (API and CLI) go through here, so every read, search, list or write of patient data is
authorised the same way and leaves exactly one audit entry — ``success`` in the same transaction as the
work, or ``denied`` / ``not_found`` / ``failed`` in its own transaction when the work is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from medfusion.errors import MedFusionError, NotFound, PermissionDenied
from medfusion.interop.fhir import ImportResult, bundle_to_charts, chart_to_bundle
from medfusion.record.models import Patient, PatientChart
from medfusion.store import audit
from medfusion.store.access import Permission, Principal
from medfusion.store.database import Database
from medfusion.store.patients import PatientFilters, PatientPage, PatientRepository, PatientSummary

T = TypeVar("T")


def _outcome(error: MedFusionError) -> audit.Outcome:
    if isinstance(error, PermissionDenied):
        return audit.Outcome.denied
    if isinstance(error, NotFound):
        return audit.Outcome.not_found
    return audit.Outcome.failed


class PatientService:
    def __init__(self, db: Database, principal: Principal) -> None:
        self.db = db
        self.principal = principal

    def _run(
        self,
        action: str,
        permission: Permission,
        work: Callable[[Session], T],
        *,
        patient_id: str | None = None,
        detail: Callable[[T], dict[str, Any]] | None = None,
        audit_patient: Callable[[T], str | None] | None = None,
    ) -> T:
        try:
            if not self.principal.may(permission):
                raise PermissionDenied(
                    f"角色 {self.principal.role} 无权执行 {permission.value}",
                    details={"permission": permission.value},
                )
            if (
                self.principal.confined()
                and patient_id is not None
                and patient_id != self.principal.patient_id
            ):
                raise PermissionDenied("只能访问本人病历 patients may only access their own record")
            with self.db.session() as session:
                result = work(session)
                audit.record(
                    session,
                    self.principal.actor,
                    action,
                    audit.Outcome.success,
                    patient_id=audit_patient(result) if audit_patient else patient_id,
                    detail=detail(result) if detail else None,
                )
            return result
        except MedFusionError as error:
            with self.db.session() as session:
                audit.record(
                    session,
                    self.principal.actor,
                    action,
                    _outcome(error),
                    patient_id=patient_id,
                    detail={"error": error.code},
                )
            raise

    # --- reads ------------------------------------------------------------------------------
    def search(self, filters: PatientFilters, *, limit: int = 50, offset: int = 0) -> PatientPage:
        """Roles that may list but not read charts (managers) see ID and phone numbers masked."""
        page = self._search(filters, limit=limit, offset=offset)
        if self.principal.may(Permission.patient_read):
            return page
        return PatientPage(total=page.total, items=[masked_contacts(p) for p in page.items])

    def _search(self, filters: PatientFilters, *, limit: int, offset: int) -> PatientPage:
        return self._run(
            "patient.search",
            Permission.patient_search,
            lambda s: PatientRepository(s).search(filters, limit=limit, offset=offset),
            detail=lambda page: {
                "filters": filters.used(),
                "total": page.total,
                "returned": [p.id for p in page.items],
            },
        )

    def get(self, patient_id: str) -> Patient:
        return self._run(
            "patient.read",
            Permission.patient_read,
            lambda s: PatientRepository(s).get(patient_id),
            patient_id=patient_id,
        )

    def chart(self, patient_id: str) -> PatientChart:
        return self._run(
            "chart.read",
            Permission.patient_read,
            lambda s: PatientRepository(s).get_chart(patient_id),
            patient_id=patient_id,
        )

    def export_fhir(self, patient_id: str) -> dict[str, Any]:
        return self._run(
            "fhir.export",
            Permission.fhir_export,
            lambda s: chart_to_bundle(PatientRepository(s).get_chart(patient_id)),
            patient_id=patient_id,
        )

    # --- writes -----------------------------------------------------------------------------
    def create(self, chart: PatientChart) -> PatientChart:
        return self._run(
            "patient.create",
            Permission.patient_write,
            lambda s: PatientRepository(s).create(chart),
            patient_id=chart.patient.id,
            detail=lambda c: {"resources": sum(len(v) for v in c.children().values())},
        )

    def update(self, patient: Patient) -> Patient:
        return self._run(
            "patient.update",
            Permission.patient_write,
            lambda s: PatientRepository(s).update_patient(patient),
            patient_id=patient.id,
        )

    def replace_chart(self, chart: PatientChart) -> PatientChart:
        return self._run(
            "chart.replace",
            Permission.patient_write,
            lambda s: PatientRepository(s).replace_chart(chart),
            patient_id=chart.patient.id,
            detail=lambda c: {"resources": sum(len(v) for v in c.children().values())},
        )

    def import_fhir(self, bundle: Any, *, strict: bool = False) -> ImportResult:
        """Validate the whole Bundle first, then write every chart in one transaction (all or nothing)."""

        def work(session: Session) -> ImportResult:
            result = bundle_to_charts(bundle, strict=strict)
            repo = PatientRepository(session)
            for chart in result.charts:
                repo.replace_chart(chart)
            return result

        return self._run(
            "fhir.import",
            Permission.fhir_import,
            work,
            detail=lambda r: {"patients": r.patient_ids[:100], "issues": len(r.issues)},
            audit_patient=lambda r: r.patient_ids[0] if len(r.patient_ids) == 1 else None,
        )

    def load_many(self, charts: list[PatientChart]) -> int:
        return self._run(
            "patient.bulk_create",
            Permission.patient_write,
            lambda s: PatientRepository(s).add_many(charts),
            detail=lambda n: {"patients": n, "first": charts[0].patient.id if charts else None},
        )


def mask_middle(value: str, keep_start: int, keep_end: int) -> str:
    """``310106********0010``-style display mask (GB/T 35273-2020 annex A: partial display)."""
    hidden = len(value) - keep_start - keep_end
    return value if hidden <= 0 else value[:keep_start] + "*" * hidden + value[len(value) - keep_end :]


def masked_contacts(summary: PatientSummary) -> PatientSummary:
    return summary.model_copy(
        update={
            "id_number": mask_middle(summary.id_number, 6, 4) if summary.id_number else None,
            "phone": mask_middle(summary.phone, 3, 4) if summary.phone else None,
        }
    )
