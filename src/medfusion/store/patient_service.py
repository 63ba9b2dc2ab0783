"""Patient-record access as one service: permission and scope checks, the work, and the audit entry.

Both surfaces (API and CLI) go through here, so every read, search, list or write of patient data is
authorised the same way and leaves exactly one audit entry — ``success`` in the same transaction as the
work, or ``denied`` / ``not_found`` / ``failed`` in its own transaction when the work is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from medfusion.errors import (
    ChartResourceConflict,
    MedFusionError,
    NotFound,
    PatientIdentityConflict,
    PermissionDenied,
)
from medfusion.interop.fhir import ImportResult, bundle_to_charts, chart_to_bundle
from medfusion.record.models import Patient, PatientChart
from medfusion.store import audit
from medfusion.store.access import Permission, Principal
from medfusion.store.chart_merge import mask_middle
from medfusion.store.database import Database
from medfusion.store.patients import (
    ChartImport,
    PatientFilters,
    PatientPage,
    PatientRepository,
    PatientSummary,
)

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
                    detail={"error": error.code, **(error.audit_detail or {})},
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
        """Validate the whole Bundle, match each Patient to the record, then write in one transaction.

        Never replaces or deletes: a new patient is created; the same person gets what the record lacks
        (stored resources are left as they are). A different person under a stored id or 身份证号
        (:class:`PatientIdentityConflict`) or a stored resource with other content
        (:class:`ChartResourceConflict`) is a 409 naming every difference, and nothing of the Bundle is
        written. Resource versioning (a ``merge`` mode keeping the previous content) needs a schema change
        and is not offered.
        """

        def work(session: Session) -> ImportResult:
            result = bundle_to_charts(bundle, strict=strict)
            repo = PatientRepository(session)
            generated = set(result.generated_ids)
            plans = [repo.plan_import(c, generated_id=c.patient.id in generated) for c in result.charts]
            _refuse_conflicts(plans)
            for plan in plans:
                repo.apply_import(plan)
            merges = [p.merge for p in plans if p.merge is not None]
            return result.model_copy(
                update={
                    "charts": [p.chart for p in plans],
                    "created": [p.chart.patient.id for p in plans if p.outcome == "created"],
                    "updated": [p.chart.patient.id for p in plans if p.outcome == "updated"],
                    "unchanged": [p.chart.patient.id for p in plans if p.outcome == "unchanged"],
                    "resources_added": sum(m.added for m in merges)
                    + sum(_resources(p.chart) for p in plans if p.outcome == "created"),
                    "resources_unchanged": sum(m.unchanged for m in merges),
                }
            )

        return self._run(
            "fhir.import",
            Permission.fhir_import,
            work,
            detail=lambda r: {
                "patients": r.patient_ids[:100],
                "created": r.created[:100],
                "updated": r.updated[:100],
                "unchanged": r.unchanged[:100],
                "resources": {"added": r.resources_added, "unchanged": r.resources_unchanged},
                "issues": len(r.issues),
            },
            audit_patient=lambda r: r.patient_ids[0] if len(r.patient_ids) == 1 else None,
        )

    def load_many(self, charts: list[PatientChart]) -> int:
        return self._run(
            "patient.bulk_create",
            Permission.patient_write,
            lambda s: PatientRepository(s).add_many(charts),
            detail=lambda n: {"patients": n, "first": charts[0].patient.id if charts else None},
        )


def _resources(chart: PatientChart) -> int:
    return sum(len(v) for v in chart.children().values())


def _refuse_conflicts(plans: list[ChartImport]) -> None:
    """One 409 for the whole Bundle: identity conflicts first, else resource conflicts. The message and
    the audit detail name patients, resources and fields only; values are in ``details`` (for the
    importer, stored ones masked — see ``chart_merge``)."""
    targets = [p.chart.patient.id for p in plans]
    repeated = sorted({t for t in targets if targets.count(t) > 1})
    identity = [{"patient": p.chart.patient.id, **d.as_detail()} for p in plans for d in p.identity] + [
        {"patient": t, "field": "id", "existing": None, "incoming": "重复 repeated"} for t in repeated
    ]
    if identity:
        patients = sorted({str(d["patient"]) for d in identity})
        fields = sorted({str(d["field"]) for d in identity})
        error: MedFusionError = PatientIdentityConflict(
            f"患者身份冲突，未写入任何内容 patient identity conflict, nothing written: "
            f"{', '.join('Patient/' + p for p in patients)} ({', '.join(fields)})",
            details={"patients": patients, "differences": identity},
        )
        error.audit_detail = {"patients": patients, "fields": fields}
        raise error
    differing = [
        {"resource": c.resource, **d.as_detail()} for p in plans for c in p.conflicts for d in c.differences
    ]
    if differing:
        resources = list(dict.fromkeys(str(d["resource"]) for d in differing))
        error = ChartResourceConflict(
            f"已存资源内容不同，不覆盖，未写入任何内容 stored resources differ and are not overwritten, "
            f"nothing written: {', '.join(resources[:10])}" + (" …" if len(resources) > 10 else ""),
            details={"resources": resources, "differences": differing[:200]},
        )
        error.audit_detail = {"resources": resources[:100]}
        raise error


def masked_contacts(summary: PatientSummary) -> PatientSummary:
    return summary.model_copy(
        update={
            "id_number": mask_middle(summary.id_number, 6, 4) if summary.id_number else None,
            "phone": mask_middle(summary.phone, 3, 4) if summary.phone else None,
        }
    )
