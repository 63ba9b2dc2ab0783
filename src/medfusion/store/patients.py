"""The patient-chart repository: one aggregate, written and read as a unit, searched by its columns."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medfusion.errors import Conflict, NotFound
from medfusion.record.models import CHILD_KINDS, CHILD_MODELS, Address, Patient, PatientChart, Sex
from medfusion.store import events as record_events
from medfusion.store.chart_merge import (
    ChartMerge,
    Difference,
    ResourceConflict,
    identity_differences,
    merge_chart,
)
from medfusion.store.tables import CHILD_TABLES, ConditionRow, EncounterRow, PatientRow


class PatientFilters(BaseModel):
    """All optional; combined with AND. ``name`` matches a substring, the others exactly
    (``diagnosis_code`` also matches subcodes: ``E11`` finds ``E11.900``)."""

    name: str | None = Field(default=None, max_length=64)
    id_number: str | None = Field(default=None, max_length=18)
    department: str | None = Field(default=None, max_length=200)
    diagnosis_code: str | None = Field(default=None, max_length=40)

    def used(self) -> list[str]:
        """Names (never values) of the filters in use — safe to audit and log."""
        return [k for k, v in self.model_dump().items() if v]


class PatientSummary(BaseModel):
    """One row of a patient list. Plain strings: a list may show identifiers masked for some roles."""

    id: str
    name: str
    sex: Sex
    birth_date: date
    id_number: str | None = None
    phone: str | None = None
    address: Address | None = None

    @classmethod
    def of(cls, patient: Patient) -> PatientSummary:
        return cls.model_validate(patient.model_dump(exclude={"fhir_extra"}))


class PatientPage(BaseModel):
    total: int
    items: list[PatientSummary]


@dataclass
class ChartImport:
    """What importing one chart would do, decided before anything is written (``plan_import``)."""

    # the incoming chart under the id it is stored as (matched by 身份证号 if it had none)
    chart: PatientChart
    existing: PatientChart | None = None
    merge: ChartMerge | None = None
    identity: list[Difference] = field(default_factory=list)

    @property
    def conflicts(self) -> list[ResourceConflict]:
        return self.merge.conflicts if self.merge else []

    @property
    def outcome(self) -> Literal["created", "updated", "unchanged"]:
        if self.existing is None:
            return "created"
        return "updated" if self.merge is not None and self.merge.changed else "unchanged"


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _index_columns(kind: str, item: Any) -> dict[str, Any]:
    match kind:
        case "encounters":
            return {
                "encounter_class": item.encounter_class.value,
                "department": item.department,
                "admitted_at": _utc(item.admitted_at),
            }
        case "conditions":
            return {"icd10_code": item.icd10_code}
        case "observations":
            return {
                "category": item.category.value,
                "name": item.name,
                "effective_at": _utc(item.effective_at),
            }
        case "procedures":
            return {"icd9cm3_code": item.icd9cm3_code}
        case "medications":
            return {"atc_code": item.atc_code, "drug_name": item.drug_name}
        case "notes":
            return {"note_type": item.note_type.value, "written_at": _utc(item.written_at)}
    return {}


class PatientRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # --- writes -----------------------------------------------------------------------------
    def create(self, chart: PatientChart) -> PatientChart:
        if self.session.get(PatientRow, chart.patient.id) is not None:
            raise Conflict(f"患者已存在 patient {chart.patient.id!r} exists", details={"field": "patient.id"})
        self._check_id_number_free(chart.patient)
        now = datetime.now(UTC)
        self.session.add(self._patient_row(chart.patient, created=now))
        self._flush()  # the parent row first: children reference it by foreign key
        self._write_children(chart)
        self._flush()
        record_events.append(self.session, record_events.chart_changes(None, chart))
        return chart

    def update_patient(self, patient: Patient) -> Patient:
        previous = self._set_patient(patient)
        record_events.append(self.session, record_events.patient_changes(previous, patient))
        return patient

    def replace_chart(self, chart: PatientChart) -> PatientChart:
        """Replace demographics and every chart resource in one transaction (create when new); record
        events name only what differs from the stored chart."""
        if self.session.get(PatientRow, chart.patient.id) is None:
            return self.create(chart)
        previous = self.get_chart(chart.patient.id)
        self._set_patient(chart.patient)
        for table in CHILD_TABLES.values():
            self.session.execute(delete(table).where(table.patient_id == chart.patient.id))
        self._write_children(chart)
        self._flush()
        record_events.append(self.session, record_events.chart_changes(previous, chart))
        return chart

    def plan_import(self, chart: PatientChart, *, generated_id: bool = False) -> ChartImport:
        """Match an incoming chart to the record without writing: new → create; the same person (no
        identity field differs) → an additive merge; someone else → ``identity`` lists the differences.
        A Patient whose id the import derived (the resource had none) matches the record holding its
        身份证号; an explicit id never silently lands on another record's 身份证号."""
        incoming = chart
        number = chart.patient.id_number
        owner = (
            self.session.execute(
                select(PatientRow.id).where(PatientRow.id_number == number)
            ).scalar_one_or_none()
            if number
            else None
        )
        if owner is not None and owner != chart.patient.id:
            if generated_id and not self.exists(chart.patient.id):
                incoming = chart.model_copy(
                    update={"patient": chart.patient.model_copy(update={"id": owner})}
                )
            else:
                held = Difference("id_number", f"属于 Patient/{owner} held by Patient/{owner}", number)
                return ChartImport(chart=chart, identity=[held])
        if not self.exists(incoming.patient.id):
            return ChartImport(chart=incoming)
        existing = self.get_chart(incoming.patient.id)
        differences = identity_differences(existing.patient, incoming.patient)
        if differences:
            return ChartImport(chart=incoming, existing=existing, identity=differences)
        return ChartImport(chart=incoming, existing=existing, merge=merge_chart(existing, incoming))

    def apply_import(self, plan: ChartImport) -> None:
        """Write a conflict-free plan: create, or add the new resources (stored ones are never deleted or
        rewritten) and fill demographics the record lacked."""
        if plan.identity or plan.conflicts:
            raise Conflict("导入计划有冲突 the import plan has conflicts")
        if plan.existing is None:
            self.create(plan.chart)
            return
        if plan.merge is None or not plan.merge.changed:
            return
        merged = plan.merge.chart
        if plan.merge.patient_changed:
            self._set_patient(merged.patient)
        stored = {kind: {item.id for item in items} for kind, items in plan.existing.children().items()}
        for kind, values in self._child_values(merged):
            if values["id"] not in stored[kind]:
                self.session.add(CHILD_TABLES[kind](**values))
        self._flush()
        record_events.append(self.session, record_events.chart_changes(plan.existing, merged))

    def add_many(self, charts: list[PatientChart]) -> int:
        """Create many new charts with one multi-row INSERT per table (batch loads, demo seeding).

        All or nothing: any id or ID number already present — or repeated within the batch — is a
        :class:`Conflict` and nothing is written.
        """
        if not charts:
            return 0
        ids = [c.patient.id for c in charts]
        numbers = [c.patient.id_number for c in charts if c.patient.id_number]
        if len(set(ids)) != len(ids) or len(set(numbers)) != len(numbers):
            raise Conflict("批次内有重复的患者或身份证号 duplicate patient or ID number within the batch")
        clash = self.session.execute(
            select(PatientRow.id).where(PatientRow.id.in_(ids) | PatientRow.id_number.in_(numbers)).limit(1)
        ).first()
        if clash is not None:
            raise Conflict(
                f"患者已存在 patient {clash[0]!r} or its ID number exists", details={"field": "patient.id"}
            )
        now = datetime.now(UTC)
        patient_rows = [self._patient_values(c.patient, created=now) for c in charts]
        child_rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in CHILD_KINDS}
        for chart in charts:
            for kind, values in self._child_values(chart):
                child_rows[kind].append(values)
        try:
            self.session.execute(insert(PatientRow), patient_rows)
            for kind, rows in child_rows.items():
                if rows:
                    self.session.execute(insert(CHILD_TABLES[kind]), rows)
        except IntegrityError as exc:
            raise Conflict(
                "数据冲突 conflicting record", details={"reason": type(exc.orig).__name__}
            ) from None
        record_events.append(
            self.session, [d for chart in charts for d in record_events.chart_changes(None, chart)]
        )
        return len(charts)

    # --- reads ------------------------------------------------------------------------------
    def exists(self, patient_id: str) -> bool:
        return self.session.get(PatientRow, patient_id) is not None

    def get(self, patient_id: str) -> Patient:
        return Patient.model_validate(self._row(patient_id).body)

    def get_chart(self, patient_id: str) -> PatientChart:
        patient = self.get(patient_id)
        parts: dict[str, list[Any]] = {}
        for kind in CHILD_KINDS:
            table = CHILD_TABLES[kind]
            rows = self.session.execute(
                select(table.body).where(table.patient_id == patient_id).order_by(table.position)
            ).scalars()
            parts[kind] = [CHILD_MODELS[kind].model_validate(body) for body in rows]
        return PatientChart(patient=patient, **parts)

    def search(self, filters: PatientFilters, *, limit: int = 50, offset: int = 0) -> PatientPage:
        query = select(PatientRow)
        if filters.name:
            escaped = filters.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(PatientRow.name.like(f"%{escaped}%", escape="\\"))
        if filters.id_number:
            query = query.where(PatientRow.id_number == filters.id_number.upper())
        if filters.department:
            query = query.where(
                PatientRow.id.in_(
                    select(EncounterRow.patient_id).where(EncounterRow.department == filters.department)
                )
            )
        if filters.diagnosis_code:
            code = filters.diagnosis_code
            query = query.where(
                PatientRow.id.in_(
                    select(ConditionRow.patient_id).where(
                        (ConditionRow.icd10_code == code) | ConditionRow.icd10_code.like(f"{code}.%")
                    )
                )
            )
        total = self.session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = self.session.execute(query.order_by(PatientRow.id).limit(limit).offset(offset)).scalars()
        return PatientPage(
            total=total, items=[PatientSummary.of(Patient.model_validate(r.body)) for r in rows]
        )

    def count(self) -> int:
        return self.session.execute(select(func.count()).select_from(PatientRow)).scalar_one()

    def ids(self, limit: int = 1000) -> list[str]:
        return list(
            self.session.execute(select(PatientRow.id).order_by(PatientRow.id).limit(limit)).scalars()
        )

    # --- internals --------------------------------------------------------------------------
    def _row(self, patient_id: str) -> PatientRow:
        row = self.session.get(PatientRow, patient_id)
        if row is None:
            raise NotFound(f"患者不存在 patient {patient_id!r} not found", details={"patient_id": patient_id})
        return row

    def _set_patient(self, patient: Patient) -> Patient:
        """Overwrite the demographics row; returns what it held before."""
        row = self._row(patient.id)
        previous = Patient.model_validate(row.body)
        self._check_id_number_free(patient)
        fresh = self._patient_row(patient, created=row.created_at)
        for column in ("name", "sex", "birth_date", "id_number", "body", "updated_at"):
            setattr(row, column, getattr(fresh, column))
        self._flush()
        return previous

    def _check_id_number_free(self, patient: Patient) -> None:
        if not patient.id_number:
            return
        owner = self.session.execute(
            select(PatientRow.id).where(PatientRow.id_number == patient.id_number)
        ).scalar_one_or_none()
        if owner is not None and owner != patient.id:
            raise Conflict(
                "身份证号已属于另一位患者 id_number belongs to another patient",
                details={"field": "id_number"},
            )

    @staticmethod
    def _patient_values(patient: Patient, *, created: datetime) -> dict[str, Any]:
        return {
            "id": patient.id,
            "name": patient.name,
            "sex": patient.sex.value,
            "birth_date": patient.birth_date,
            "id_number": patient.id_number,
            "body": patient.model_dump(mode="json"),
            "created_at": created,
            "updated_at": datetime.now(UTC),
        }

    @classmethod
    def _patient_row(cls, patient: Patient, *, created: datetime) -> PatientRow:
        return PatientRow(**cls._patient_values(patient, created=created))

    @staticmethod
    def _child_values(chart: PatientChart) -> Iterator[tuple[str, dict[str, Any]]]:
        for kind, items in chart.children().items():
            for position, item in enumerate(items):
                yield (
                    kind,
                    {
                        "id": item.id,
                        "patient_id": chart.patient.id,
                        "position": position,
                        "encounter_id": getattr(item, "encounter_id", None),
                        "body": item.model_dump(mode="json", exclude={"text"} if kind == "notes" else None),
                        **_index_columns(kind, item),
                    },
                )

    def _write_children(self, chart: PatientChart) -> None:
        for kind, values in self._child_values(chart):
            self.session.add(CHILD_TABLES[kind](**values))

    def _flush(self) -> None:
        try:
            self.session.flush()
        except IntegrityError as exc:
            raise Conflict(
                "数据冲突 conflicting record", details={"reason": type(exc.orig).__name__}
            ) from None
