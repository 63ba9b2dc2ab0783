"""Patient-record access as one service: permission and scope checks, the work, and the audit entry.

Both surfaces (API and CLI) go through here, so every read, search, list or write of patient data is
authorised the same way and leaves exactly one audit entry — ``success`` in the same transaction as the
work, or ``denied`` / ``not_found`` / ``failed`` in its own transaction when the work is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from pydantic import Field
from sqlalchemy.orm import Session

from medfusion.errors import (
    ChartResourceConflict,
    MedFusionError,
    NotFound,
    PatientIdentityConflict,
    PermissionDenied,
)
from medfusion.interop.fhir import CodeMapper, ImportResult, bundle_to_charts, chart_to_bundle
from medfusion.record.models import ClinicalNote, Patient, PatientChart
from medfusion.store import audit
from medfusion.store.access import Permission, Principal
from medfusion.store.database import Database
from medfusion.store.display import (
    WITHHELD,
    Redactor,
    ShownPage,
    Surface,
    View,
    chart_view,
    export_chart,
    label_bundle,
    mask_name,
    policy,
    show,
    show_page,
)
from medfusion.store.fhir_raw import FhirRawRepository
from medfusion.store.patients import (
    ChartImport,
    PatientFilters,
    PatientPage,
    PatientRepository,
)
from medfusion.store.resource_versions import HistoryPage, WriteContext, resource_type

T = TypeVar("T")


class StoredImport(ImportResult):
    """An import as the store wrote it: the importer's result plus what became a new version."""

    mode: Literal["add", "merge"] = "add"
    # every stored resource that got a new version: {"resource": "Observation/x", "fields": [...], "restored"}
    revised: list[dict[str, Any]] = Field(default_factory=list)
    resources_revised: int = 0  # chart resources revised (merge mode), the Patient not counted


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
        reads_only: bool = False,
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
            if reads_only:
                # work that writes nothing reads outside the write lock; its entry joins concurrent
                # ones in one commit, and the result is returned only once the entry is committed
                with self.db.read_session() as session:
                    result = work(session)
                audit.append(
                    self.db,
                    self.principal.actor,
                    action,
                    audit.Outcome.success,
                    patient_id=audit_patient(result) if audit_patient else patient_id,
                    detail=detail(result) if detail else None,
                )
                return result
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
    def search(self, filters: PatientFilters, *, limit: int = 50, offset: int = 0) -> ShownPage:
        """Lists show identifiers masked for every role, de-identified for some (``store/display``)."""
        return show_page(self.principal, self._search(filters, limit=limit, offset=offset))

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
            reads_only=True,
        )

    def get(self, patient_id: str) -> Patient:
        return self._run(
            "patient.read",
            Permission.patient_read,
            lambda s: PatientRepository(s).get(patient_id),
            patient_id=patient_id,
            reads_only=True,
        )

    def chart(self, patient_id: str) -> PatientChart:
        return self._run(
            "chart.read",
            Permission.patient_read,
            lambda s: PatientRepository(s).get_chart(patient_id),
            patient_id=patient_id,
            reads_only=True,
        )

    def export_fhir(self, patient_id: str, redact: Redactor | None = None) -> dict[str, Any]:
        """Under the role's export view (``store/display``); ``redact`` rewrites note text where it must."""

        def work(s: Session) -> dict[str, Any]:
            chart = PatientRepository(s).get_chart(patient_id)
            # resources as an import received them (unchanged ones, and types the record does not hold)
            # go out only under the full view: the raw JSON is not redacted
            full = policy().view(self.principal.role, Surface.export) is View.full
            raw = FhirRawRepository(s).latest(patient_id) if full else []
            bundle = chart_to_bundle(export_chart(self.principal, chart, redact), raw)
            return label_bundle(self.principal, bundle, chart.patient.birth_date)

        view = policy().view(self.principal.role, Surface.export).value
        return self._run(
            "fhir.export",
            Permission.fhir_export,
            work,
            patient_id=patient_id,
            detail=lambda _: {"view": view},
        )

    # --- history ----------------------------------------------------------------------------
    def history(
        self,
        patient_id: str,
        *,
        kind: str | None = None,
        resource_id: str | None = None,
        limit: int = 500,
        offset: int = 0,
        redact: Redactor | None = None,
    ) -> HistoryPage:
        """Every version of a chart's resources (or of one), newest first, deleted ones included —
        under the role's chart view (``store/display``): demographics and note text shown as the chart
        shows them, so the history is no way around the display policy."""

        def work(s: Session) -> tuple[HistoryPage, str | None]:
            repo = PatientRepository(s)
            page = repo.history(patient_id, kind=kind, resource_id=resource_id, limit=limit, offset=offset)
            return page, repo.get(patient_id).name

        page, name = self._run(
            "chart.history",
            Permission.patient_read,
            work,
            patient_id=patient_id,
            detail=lambda result: {
                "kind": kind,
                "resource_id": resource_id,
                "total": result[0].total,
                "returned": len(result[0].items),
            },
        )
        return _shown_history(page, chart_view(self.principal), redact, name)

    # --- writes -----------------------------------------------------------------------------
    def _writer(self, source: str, reason: str | None = None) -> WriteContext:
        return WriteContext(actor=self.principal.username, source=source, reason=reason)

    def create(self, chart: PatientChart) -> PatientChart:
        return self._run(
            "patient.create",
            Permission.patient_write,
            lambda s: PatientRepository(s, self._writer("patient.create")).create(chart),
            patient_id=chart.patient.id,
            detail=lambda c: {"resources": sum(len(v) for v in c.children().values())},
        )

    def update(self, patient: Patient) -> Patient:
        return self._run(
            "patient.update",
            Permission.patient_write,
            lambda s: PatientRepository(s, self._writer("patient.update")).update_patient(patient),
            patient_id=patient.id,
        )

    def replace_chart(self, chart: PatientChart, *, reason: str | None = None) -> PatientChart:
        """Changed resources get new versions, omitted ones are soft-deleted (``reason`` or a default)."""
        return self._run(
            "chart.replace",
            Permission.patient_write,
            lambda s: PatientRepository(s, self._writer("chart.replace", reason)).replace_chart(chart),
            patient_id=chart.patient.id,
            detail=lambda c: {"resources": sum(len(v) for v in c.children().values())},
        )

    def delete_resource(self, patient_id: str, kind: str, resource_id: str, reason: str) -> int:
        """Soft delete, with who and why in the version row and the audit entry; returns its version."""
        return self._run(
            "chart.delete",
            Permission.patient_write,
            lambda s: PatientRepository(s, self._writer("chart.delete", reason)).delete_resource(
                patient_id, kind, resource_id, reason
            ),
            patient_id=patient_id,
            detail=lambda version: {
                "resource": f"{resource_type(kind)}/{resource_id}",
                "version": version,
                "reason": reason.strip()[:500],
            },
        )

    def import_fhir(
        self,
        bundle: Any,
        *,
        strict: bool = False,
        merge: bool = False,
        profile: str = "r4",
        mapper: CodeMapper | None = None,
    ) -> StoredImport:
        """Validate the whole Bundle, match each Patient to the record, then write in one transaction.

        Never replaces or deletes: a new patient is created; the same person gets what the record lacks
        (stored resources are left as they are). A different person under a stored id, 身份证号 or
        identifier (:class:`PatientIdentityConflict`) or a stored resource with other content
        (:class:`ChartResourceConflict`) is a 409 naming every difference, and nothing of the Bundle is
        written. ``merge`` (an explicit request): those conflicts become new versions of the resources and
        of the Patient instead — the stored content stays readable as the prior version; an identifier
        held by two stored patients is still refused. ``mapper``: how other code systems become ICD-10 /
        ICD-9-CM-3 (default the cited SNOMED CT table; the surfaces pass the graph's lexicon as well).
        """
        source = "fhir.import.merge" if merge else "fhir.import"

        def work(session: Session) -> StoredImport:
            result = bundle_to_charts(bundle, strict=strict, profile=profile, mapper=mapper)
            repo = PatientRepository(session, self._writer(source))
            generated = set(result.generated_ids)
            plans = [
                repo.plan_import(c, generated_id=c.patient.id in generated, merge=merge)
                for c in result.charts
            ]
            _refuse_conflicts(plans)
            for plan in plans:
                repo.apply_import(plan, source=source)
            # every resource as received, in the same transaction (issue 15 part 3: nothing valid dropped)
            stored_id = {c.patient.id: p.chart.patient.id for c, p in zip(result.charts, plans, strict=True)}
            kept = FhirRawRepository(session).keep(
                r.model_copy(update={"patient_id": stored_id.get(r.patient_id or "", r.patient_id)})
                for r in result.raw
            )
            merges = [p.merge for p in plans if p.merge is not None]
            revised = [
                {"resource": f"Patient/{m.chart.patient.id}", "fields": m.patient_fields, "restored": False}
                for m in merges
                if m.patient_changed
            ] + [
                {"resource": r.resource, "fields": r.fields, "restored": r.restored}
                for m in merges
                for r in m.revisions
            ]
            fields = {name: getattr(result, name) for name in type(result).model_fields}
            return StoredImport.model_construct(
                **{
                    **fields,
                    "charts": [p.chart for p in plans],
                    "created": [p.chart.patient.id for p in plans if p.outcome == "created"],
                    "updated": [p.chart.patient.id for p in plans if p.outcome == "updated"],
                    "unchanged": [p.chart.patient.id for p in plans if p.outcome == "unchanged"],
                    "resources_added": sum(m.added for m in merges)
                    + sum(_resources(p.chart) for p in plans if p.outcome == "created"),
                    "resources_unchanged": sum(m.unchanged for m in merges),
                    "raw_added": kept.added,
                    "raw_unchanged": kept.unchanged,
                    "mode": "merge" if merge else "add",
                    "revised": revised,
                    "resources_revised": sum(len(m.revisions) for m in merges),
                }
            )

        return self._run(
            "fhir.import",
            Permission.fhir_import,
            work,
            detail=lambda r: {
                "mode": r.mode,
                "patients": r.patient_ids[:100],
                "created": r.created[:100],
                "updated": r.updated[:100],
                "unchanged": r.unchanged[:100],
                "resources": {
                    "added": r.resources_added,
                    "unchanged": r.resources_unchanged,
                    "revised": r.resources_revised,
                },
                "revised": [{"resource": v["resource"], "fields": v["fields"]} for v in r.revised[:100]],
                "issues": len(r.issues),
            },
            audit_patient=lambda r: r.patient_ids[0] if len(r.patient_ids) == 1 else None,
        )

    def load_many(self, charts: list[PatientChart]) -> int:
        return self._run(
            "patient.bulk_create",
            Permission.patient_write,
            lambda s: PatientRepository(s, self._writer("patient.bulk_create")).add_many(charts),
            detail=lambda n: {"patients": n, "first": charts[0].patient.id if charts else None},
        )


def _shown_history(
    page: HistoryPage, view: View, redact: Redactor | None, patient_name: str | None
) -> HistoryPage:
    """Demographics versions through ``show``, note versions through the view's note rule."""
    if view is View.full:
        return page
    rules = policy().views[view]
    items = []
    for item in page.items:
        if item.kind == "patient":
            shown = show(Patient.model_validate(item.body), view).model_dump(mode="json")
            item = item.model_copy(update={"body": shown})
        elif item.kind == "notes" and rules.notes != "full":
            note = ClinicalNote.model_validate(item.body)
            names = [n for n in (patient_name, note.author) if n]
            sections = [
                section.model_copy(update={"text": (redact or _withheld)(section.text, names)})
                for section in note.sections
            ]
            shown_note = note.model_copy(update={"sections": sections, "author": mask_name(note.author)})
            item = item.model_copy(update={"body": shown_note.model_dump(mode="json", exclude={"text"})})
        items.append(item)
    return page.model_copy(update={"items": items})


def _withheld(text: str, names: Sequence[str]) -> str:
    """Without a redactor, a view that redacts notes shows none of their text (as the chart does)."""
    return WITHHELD if text else text


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
