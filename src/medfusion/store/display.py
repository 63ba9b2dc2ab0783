"""Minimum-necessary display of patient identifiers: what each role sees of a patient on each surface.

The policy is data (``display_policy.toml``, sources and review status there: PIPL 第六条 / 第二十八条,
GB/T 39725-2020 7, 8.3, 10.2, 11.1, 11.4, 附录G; GB/T 35273-2020 附录A for partial display). Three views:
``full`` (the stored values), ``masked`` (identifiers partially displayed, address to district) and
``deidentified`` (name as surname + ``*``, birth date as year, identifiers withheld, notes with identifiers
tagged). Lists use a role's ``list`` view, charts its ``chart`` view, FHIR exports its ``export`` view.

Engines here are pure functions of values; the one side effect is :func:`record_reveal`, the audit entry of
an explicit reveal (field names and the reason, never the values). Free-text redaction is passed in
(``Redactor``) because the privacy analyzer lives beside ``store`` in the data layer, not below it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medfusion import packaged
from medfusion.errors import PermissionDenied
from medfusion.record.models import (
    CHILD_KINDS,
    Address,
    AllergyIntolerance,
    ClinicalNote,
    Condition,
    Encounter,
    Immunization,
    MedicationRequest,
    Observation,
    Patient,
    PatientChart,
    Procedure,
    Sex,
)
from medfusion.record.surnames import split_name
from medfusion.store import audit
from medfusion.store.access import Permission, Principal
from medfusion.store.masks import mask_middle

if TYPE_CHECKING:  # store.patients imports chart_merge, which imports the masks from here
    from medfusion.store.database import Database
    from medfusion.store.patients import PatientPage, PatientSummary

Redactor = Callable[[str, Sequence[str]], str]  # (text, names known to be the patient's) → text
# security labels of a Bundle that is not the full record (HL7 v3 ObservationValue, FHIR R4 meta.security)
SECURITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"


class View(StrEnum):
    full = "full"
    masked = "masked"
    deidentified = "deidentified"


class Surface(StrEnum):
    list = "list"
    chart = "chart"
    export = "export"


class FieldRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["full", "surname"]
    birth_date: Literal["full", "year"]
    id_number: Literal["full", "mask", "omit"]
    phone: Literal["full", "mask", "omit"]
    address: Literal["full", "district", "omit"]
    identifiers: Literal["full", "mask", "omit"]
    notes: Literal["full", "redact"]


class Mask(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_start: int = Field(ge=0)
    keep_end: int = Field(ge=0)


class RoleViews(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    list: View
    chart: View
    export: View


class DisplayPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    status: str
    views: dict[View, FieldRules]
    masks: dict[Literal["id_number", "phone", "identifiers"], Mask]
    roles: dict[str, RoleViews]

    @model_validator(mode="after")
    def _complete(self) -> DisplayPolicy:
        if set(self.views) != set(View):
            raise ValueError(f"views must define {sorted(View)}")
        if set(self.masks) != {"id_number", "phone", "identifiers"}:
            raise ValueError("masks must define id_number, phone and identifiers")
        return self

    def view(self, role: str, surface: Surface) -> View:
        """A role the policy does not name gets the most restrictive view."""
        views = self.roles.get(role)
        return getattr(views, surface.value) if views else View.deidentified


@lru_cache(maxsize=1)
def policy() -> DisplayPolicy:
    return DisplayPolicy.model_validate(packaged.toml("medfusion.store", "display_policy.toml"))


# --- value masks ------------------------------------------------------------------------------------
def mask_name(name: str | None) -> str | None:
    """王秀英 → 王**, 欧阳娜娜 → 欧阳**; a one-character name is shown as ``*``."""
    if not name:
        return name
    surname, given = split_name(name)
    if not given:
        return "*" * len(name)
    return surname + "*" * len(given)


def _masked(kind: Literal["id_number", "phone", "identifiers"], value: str) -> str:
    m = policy().masks[kind]
    return mask_middle(value, m.keep_start, m.keep_end)


def district(address: Address | None) -> Address | None:
    if address is None:
        return None
    return Address(province=address.province, city=address.city, district=address.district)


# --- what is shown ----------------------------------------------------------------------------------
class ShownIdentifier(BaseModel):
    """An identifier beside the 身份证号 (医保号, 病案号 / MRN …) as the viewer may see it."""

    system: str | None = None
    type: str | None = None
    value: str


class ShownPatient(BaseModel):
    """A patient as one viewer may see them. ``masked`` names the fields shown masked, coarsened or withheld;
    a viewer holding ``identifier:reveal`` gets them in full through an audited reveal."""

    id: str
    name: str | None = None
    sex: Sex
    birth_date: str | None = Field(description="YYYY-MM-DD, or YYYY when coarsened; null when unknown")
    id_number: str | None = None
    phone: str | None = None
    address: Address | None = None
    identifiers: list[ShownIdentifier] = Field(default_factory=list)
    view: View
    masked: list[str] = Field(default_factory=list)
    fhir_extra: dict[str, Any] = Field(
        default_factory=dict,
        description="unmodelled FHIR elements — in the full view only (they may hold identifiers)",
    )

    def as_patient(self) -> Patient:
        """The record's Patient again — only from the full view (a masked value is not a value)."""
        if self.view is not View.full:
            raise ValueError(f"a {self.view.value} view is not the record")
        return Patient.model_validate(self.model_dump(exclude={"view", "masked", "identifiers"}))


class ShownPage(BaseModel):
    total: int
    items: list[ShownPatient]


class ShownChart(BaseModel):
    """A chart as one viewer may see it: the patient through the display policy, notes redacted in the
    de-identified view, everything else as recorded. Same children as :class:`PatientChart`."""

    model_config = ConfigDict(extra="forbid")

    patient: ShownPatient
    encounters: list[Encounter] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    observations: list[Observation] = Field(default_factory=list)
    procedures: list[Procedure] = Field(default_factory=list)
    medications: list[MedicationRequest] = Field(default_factory=list)
    allergies: list[AllergyIntolerance] = Field(default_factory=list)
    immunizations: list[Immunization] = Field(default_factory=list)
    notes: list[ClinicalNote] = Field(default_factory=list)

    def as_chart(self) -> PatientChart:
        """The record's chart again — only from the full view (own record, or after a reveal)."""
        return PatientChart(patient=self.patient.as_patient(), **{k: getattr(self, k) for k in CHILD_KINDS})

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, data: Any) -> Any:
        # ``ClinicalNote.text`` is computed: accept a chart we serialised ourselves (as PatientChart does)
        if isinstance(data, dict) and isinstance(data.get("notes"), list):
            notes = [
                {k: v for k, v in n.items() if k != "text"} if isinstance(n, dict) else n
                for n in data["notes"]
            ]
            data = {**data, "notes": notes}
        return data


def _identifiers(extra: dict[str, Any], rule: str) -> tuple[list[ShownIdentifier], bool]:
    items = [i for i in extra.get("identifier") or [] if isinstance(i, dict) and i.get("value") is not None]
    if rule == "omit":
        return [], bool(items)
    shown = []
    for item in items:
        kind = item.get("type")
        label = kind.get("text") if isinstance(kind, dict) else None
        value = str(item["value"])
        shown.append(
            ShownIdentifier(
                system=item.get("system"),
                type=label,
                value=value if rule == "full" else _masked("identifiers", value),
            )
        )
    return shown, rule != "full" and bool(items)


def show(patient: Patient | PatientSummary, view: View) -> ShownPatient:
    """One patient (a list row or the chart's demographics) through one view's rules."""
    rules = policy().views[view]
    masked: list[str] = []

    def keep(field: str, value: Any, shown: Any) -> Any:
        if value is not None and shown != value:
            masked.append(field)
        return shown

    name = keep("name", patient.name, patient.name if rules.name == "full" else mask_name(patient.name))
    born = patient.birth_date
    birth = born.isoformat() if born else None
    birth = keep("birth_date", birth, birth if rules.birth_date == "full" or born is None else str(born.year))
    values: dict[str, str | None] = {}
    for field in ("id_number", "phone"):
        value: str | None = getattr(patient, field)
        rule = getattr(rules, field)
        kind: Literal["id_number", "phone"] = "id_number" if field == "id_number" else "phone"
        shown = value if rule == "full" or value is None else None if rule == "omit" else _masked(kind, value)
        values[field] = keep(field, value, shown)
    address = patient.address
    shown_address = (
        address if rules.address == "full" else None if rules.address == "omit" else district(address)
    )
    keep("address", address, shown_address)
    identifiers: list[ShownIdentifier] = []
    if isinstance(patient, Patient):
        identifiers, hidden = _identifiers(patient.fhir_extra, rules.identifiers)
        if hidden:
            masked.append("identifiers")
    return ShownPatient(
        id=patient.id,
        name=name,
        sex=patient.sex,
        birth_date=birth,
        id_number=values["id_number"],
        phone=values["phone"],
        address=shown_address,
        identifiers=identifiers,
        view=view,
        masked=masked,
        fhir_extra=patient.fhir_extra if view is View.full and isinstance(patient, Patient) else {},
    )


def show_page(principal: Principal, page: PatientPage) -> ShownPage:
    """A patient list or search result: every role's ``list`` view masks identifiers."""
    view = policy().view(principal.role, Surface.list)
    return ShownPage(total=page.total, items=[show(p, view) for p in page.items])


def chart_view(principal: Principal, *, revealed: bool = False) -> View:
    """The view of a chart: the role's ``chart`` view, or ``full`` after an authorised reveal."""
    return View.full if revealed else policy().view(principal.role, Surface.chart)


WITHHELD = "〔已隐去 withheld〕"


def _withhold(text: str, names: Sequence[str]) -> str:
    """Without a redactor, a view that redacts notes shows none of their text."""
    return WITHHELD if text else text


def _redacted_notes(chart: PatientChart, redact: Redactor | None) -> list[ClinicalNote]:
    known = [n for n in (chart.patient.name, *(note.author for note in chart.notes)) if n]
    redact = redact or _withhold
    return [
        n.model_copy(
            update={
                "author": mask_name(n.author),
                "sections": [s.model_copy(update={"text": redact(s.text, known)}) for s in n.sections],
            }
        )
        for n in chart.notes
    ]


def show_chart(chart: PatientChart, view: View, redact: Redactor | None = None) -> ShownChart:
    rules = policy().views[view]
    notes = chart.notes if rules.notes == "full" else _redacted_notes(chart, redact)
    children: dict[str, Any] = {kind: getattr(chart, kind) for kind in CHILD_KINDS}
    children["notes"] = notes
    if rules.identifiers == "omit":  # unmodelled FHIR elements may hold identifiers (住院号, 医保号 …)
        children = {
            kind: [item.model_copy(update={"fhir_extra": {}}) for item in items]
            for kind, items in children.items()
        }
    return ShownChart(patient=show(chart.patient, view), **children)


def revealable(chart: PatientChart, principal: Principal) -> list[str]:
    """The fields this principal's chart view hides that a reveal would show."""
    return show(chart.patient, chart_view(principal)).masked


def record_reveal(
    db: Database,
    principal: Principal,
    patient_id: str,
    fields: Sequence[str],
    *,
    reason: str | None,
    surface: str,
) -> None:
    """Authorise and audit an explicit reveal (``patient.reveal``): field names and reason, never values.

    Without ``identifier:reveal`` the attempt is audited ``denied`` and refused (403)."""
    allowed = principal.may(Permission.identifier_reveal) or (
        principal.confined() and principal.patient_id == patient_id
    )
    outcome = audit.Outcome.success if allowed else audit.Outcome.denied
    detail: dict[str, Any] = {"fields": list(fields), "surface": surface}
    if reason:
        detail["reason"] = reason
    with db.session() as session:
        audit.record(
            session, principal.actor, "patient.reveal", outcome, patient_id=patient_id, detail=detail
        )
    if not allowed:
        raise PermissionDenied(
            f"角色 {principal.role} 无权查看完整身份标识 identifier:reveal required",
            details={"permission": Permission.identifier_reveal.value},
        )


def shown_chart(
    db: Database,
    principal: Principal,
    chart: PatientChart,
    *,
    reveal: bool = False,
    reason: str | None = None,
    surface: str = "api",
    redact: Redactor | None = None,
) -> ShownChart:
    """A chart read (already authorised and audited as ``chart.read``) as this principal sees it; with
    ``reveal``, the full identifiers after an audited ``patient.reveal`` (403 without the permission)."""
    view = chart_view(principal)
    if reveal:
        record_reveal(
            db, principal, chart.patient.id, revealable(chart, principal), reason=reason, surface=surface
        )
        view = View.full
    return show_chart(chart, view, redact)


def shown_patient(
    db: Database,
    principal: Principal,
    patient: Patient,
    *,
    reveal: bool = False,
    reason: str | None = None,
    surface: str = "api",
) -> ShownPatient:
    """A patient's demographics under the chart view, as :func:`shown_chart`."""
    view = chart_view(principal)
    if reveal:
        fields = show(patient, view).masked
        record_reveal(db, principal, patient.id, fields, reason=reason, surface=surface)
        view = View.full
    return show(patient, view)


# --- FHIR export ------------------------------------------------------------------------------------
def export_chart(principal: Principal, chart: PatientChart, redact: Redactor | None = None) -> PatientChart:
    """The chart a FHIR export is built from, under the role's ``export`` view.

    An export carries valid values only: what the view masks is withheld (a partially displayed 身份证号
    is not an identifier), the address is cut to its district, unmodelled FHIR elements (which may hold
    identifiers) are dropped, and notes are redacted. :func:`label_bundle` then coarsens the birth date."""
    view = policy().view(principal.role, Surface.export)
    if view is View.full:
        return chart
    rules = policy().views[view]
    p = chart.patient
    patient = p.model_copy(
        update={
            "name": p.name if rules.name == "full" else mask_name(p.name),
            "id_number": p.id_number if rules.id_number == "full" else None,
            "phone": p.phone if rules.phone == "full" else None,
            "address": p.address if rules.address == "full" else district(p.address),
            "fhir_extra": {},
        }
    )
    children: dict[str, Any] = {
        kind: [item.model_copy(update={"fhir_extra": {}}) for item in getattr(chart, kind)]
        for kind in CHILD_KINDS
    }
    if rules.notes == "redact":
        children["notes"] = [n.model_copy(update={"fhir_extra": {}}) for n in _redacted_notes(chart, redact)]
    return chart.model_copy(update={"patient": patient, **children})


def label_bundle(principal: Principal, bundle: dict[str, Any], birth_date: date | None) -> dict[str, Any]:
    """Mark a Bundle built by :func:`export_chart` with what was done to it (``meta.security``) and coarsen
    the Patient's birth date to the year where the view says so (``YYYY`` is a valid FHIR date)."""
    view = policy().view(principal.role, Surface.export)
    if view is View.full:
        return bundle
    rules = policy().views[view]
    code = "PSEUDED" if view is View.deidentified else "MASKED"
    display = "pseudonymized" if code == "PSEUDED" else "masked"
    meta = bundle.setdefault("meta", {})
    meta.setdefault("security", []).append({"system": SECURITY_SYSTEM, "code": code, "display": display})
    if rules.birth_date == "year" and birth_date is not None:
        for entry in bundle.get("entry", []):
            resource = entry.get("resource", {})
            if resource.get("resourceType") == "Patient":
                resource["birthDate"] = str(birth_date.year)
    return bundle
