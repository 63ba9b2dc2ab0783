"""How an imported chart meets a stored one: identity check, then an additive merge that never removes.

Pure functions of two charts (no session). ``identity_differences`` says whether the incoming Patient is
the stored person; ``merge_chart`` adds what the stored chart lacks and reports, by name, each resource
whose id is stored with other content. By default such a resource is a conflict (the caller refuses the
import); in merge mode (an explicit request) it becomes a revision — the store writes it as a new version
and keeps the stored content as the prior one (``resource_versions``), so nothing is lost either way.
A resource that was soft-deleted and arrives again unchanged stays deleted; with other content it is a
conflict, or in merge mode a restoring revision.

Difference values go to the user who is importing (API response details), never to logs or the audit
log: the stored side's name is shown as surname + ``*``, its ID and phone numbers masked
(GB/T 35273-2020 annex A partial display); the incoming side is the importer's own data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from medfusion.interop.fhir.export import RESOURCE_TYPES
from medfusion.record.models import CHILD_KINDS, Patient, PatientChart, Sex
from medfusion.store.masks import mask_middle

IDENTITY_FIELDS = ("name", "birth_date", "sex", "id_number")
CONTACT_FIELDS = ("phone", "address")


@dataclass
class Difference:
    field: str
    existing: Any
    incoming: Any

    def as_detail(self) -> dict[str, Any]:
        return {"field": self.field, "existing": self.existing, "incoming": self.incoming}


@dataclass
class ResourceConflict:
    resource: str  # FHIR type/id, e.g. Observation/P0000001-O3
    differences: list[Difference]


@dataclass
class Revision:
    """A stored resource the merge writes a new version of (merge mode), naming the fields that differ."""

    kind: str
    resource_id: str
    fields: list[str]
    restored: bool = False  # it was soft-deleted; the new version brings it back

    @property
    def resource(self) -> str:
        return f"{RESOURCE_TYPES[self.kind]}/{self.resource_id}"


@dataclass
class ChartMerge:
    chart: PatientChart  # stored chart plus what the import adds (and, merging, revises), in chart order
    patient_changed: bool = False
    patient_fields: list[str] = field(default_factory=list)  # demographics fields that change
    added: int = 0
    unchanged: int = 0
    revisions: list[Revision] = field(default_factory=list)
    conflicts: list[ResourceConflict] = field(default_factory=list)
    added_ids: dict[str, set[str]] = field(default_factory=dict)  # kind → ids the import adds

    @property
    def changed(self) -> bool:
        return self.patient_changed or self.added > 0 or bool(self.revisions)


def _shown(name: str, value: Any) -> Any:
    """A stored value as the importer may see it."""
    if value is None:
        return None
    if name == "name":
        return mask_middle(str(value), 1, 0)
    if name == "id_number":
        return mask_middle(str(value), 6, 4)
    if name == "phone":
        return mask_middle(str(value), 3, 4)
    if name == "address":
        return "（已存）stored"
    return value


def identifier_pairs(patient: Patient) -> set[tuple[str, str]]:
    """(system, value) of the identifiers beside the 身份证号 (MRN, 医保号 …), kept in ``fhir_extra`` on
    import. Truncated to the index's column widths (``patient_identifiers``)."""
    found: set[tuple[str, str]] = set()
    for item in patient.fhir_extra.get("identifier") or []:
        if isinstance(item, dict) and item.get("system") and item.get("value") is not None:
            found.add((str(item["system"])[:200], str(item["value"])[:100]))
    return found


def _identifiers(patient: Patient) -> dict[str, set[str]]:
    """Identifiers by system."""
    found: dict[str, set[str]] = {}
    for system, value in identifier_pairs(patient):
        found.setdefault(system, set()).add(value)
    return found


def identity_differences(existing: Patient, incoming: Patient) -> list[Difference]:
    """Fields on which the incoming Patient is someone else. Absent values do not differ (an import may
    leave out the 身份证号), and an unknown sex matches any."""
    differences: list[Difference] = []
    for name in IDENTITY_FIELDS:
        old, new = getattr(existing, name), getattr(incoming, name)
        if old is None or new is None or old == new:
            continue
        if name == "sex" and Sex.unknown in (old, new):
            continue
        shown_new = new.isoformat() if name == "birth_date" else getattr(new, "value", new)
        shown_old = old.isoformat() if name == "birth_date" else getattr(old, "value", old)
        differences.append(Difference(name, _shown(name, shown_old), shown_new))
    theirs = _identifiers(existing)
    for system, values in sorted(_identifiers(incoming).items()):
        if system in theirs and not (theirs[system] & values):
            differences.append(Difference(f"identifier[{system}]", "（已存）stored", sorted(values)))
    return differences


class MergeInvalid(ValueError):
    """The merged demographics break a record rule (e.g. a new birth date against the stored 身份证号)."""


def _merge_patient(
    existing: Patient, incoming: Patient, *, merge: bool = False
) -> tuple[Patient, list[Difference]]:
    """Demographics: a value the record lacks is added, one it holds is kept; two different values of a
    contact field (phone, address, an unmodelled element) are a conflict — merging, the incoming value
    (identity fields too) becomes the new version. An absent incoming value never erases a stored one."""
    merged: dict[str, Any] = existing.model_dump(mode="json")
    new = incoming.model_dump(mode="json")
    conflicts: list[Difference] = []
    for name in (*IDENTITY_FIELDS, *CONTACT_FIELDS):
        if new.get(name) is None or new[name] == merged.get(name):
            continue
        lacking = merged.get(name) is None or (name == "sex" and merged[name] == Sex.unknown.value)
        if lacking or (merge and not (name == "sex" and new[name] == Sex.unknown.value)):
            merged[name] = new[name]
        elif name in CONTACT_FIELDS:
            conflicts.append(Difference(name, _shown(name, merged[name]), new[name]))
    extra: dict[str, Any] = dict(merged.get("fhir_extra") or {})
    for key, value in (new.get("fhir_extra") or {}).items():
        if key == "identifier" and isinstance(value, list):
            have = list(extra.get("identifier") or [])
            extra["identifier"] = have + [item for item in value if item not in have]
        elif key not in extra or merge:
            extra[key] = value
        elif extra[key] != value:
            conflicts.append(Difference(key, "（已存）stored", "（不同）differs"))
    merged["fhir_extra"] = extra
    try:
        return Patient.model_validate(merged), conflicts
    except ValidationError as error:
        rules = "; ".join(str(e.get("msg", "")) for e in error.errors())[:300]
        raise MergeInvalid(rules) from None


def _dump(kind: str, item: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = item.model_dump(mode="json", exclude={"text"} if kind == "notes" else None)
    return dumped


def merge_chart(
    existing: PatientChart,
    incoming: PatientChart,
    *,
    deleted: dict[str, dict[str, Any]] | None = None,
    merge: bool = False,
) -> ChartMerge:
    """The stored chart plus what ``incoming`` adds; same-id resources with other content are conflicts
    (field names only: values of clinical resources are not echoed) — or, with ``merge``, revisions.
    ``deleted``: kind → id → the soft-deleted resources of the stored chart. Raises :class:`MergeInvalid`
    when merged demographics break a record rule."""
    patient, patient_conflicts = _merge_patient(existing.patient, incoming.patient, merge=merge)
    before_patient, after_patient = existing.patient.model_dump(mode="json"), patient.model_dump(mode="json")
    result = ChartMerge(
        chart=existing,
        patient_changed=patient != existing.patient,
        patient_fields=sorted(
            k
            for k in before_patient.keys() | after_patient.keys()
            if before_patient.get(k) != after_patient.get(k)
        ),
    )
    if patient_conflicts:
        result.conflicts.append(ResourceConflict(f"Patient/{existing.patient.id}", patient_conflicts))
    parts: dict[str, list[Any]] = {}
    for kind in CHILD_KINDS:
        stored = {item.id: item for item in getattr(existing, kind)}
        gone = dict((deleted or {}).get(kind, {}))
        items = list(getattr(existing, kind))
        added = result.added_ids.setdefault(kind, set())
        for item in getattr(incoming, kind):
            old = stored.get(item.id)
            was_deleted = old is None and item.id in gone
            if old is None and not was_deleted:
                items.append(item)
                stored[item.id] = item
                added.add(item.id)
                result.added += 1
                continue
            before, after = _dump(kind, old if old is not None else gone[item.id]), _dump(kind, item)
            if before == after:
                result.unchanged += 1  # the same content again (a deleted one stays deleted)
                continue
            fields = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
            if merge:
                if was_deleted:
                    items.append(item)
                    del gone[item.id]
                else:
                    items[next(i for i, x in enumerate(items) if x.id == item.id)] = item
                stored[item.id] = item
                result.revisions.append(Revision(kind, item.id, fields, restored=was_deleted))
                continue
            marks = (
                [Difference("deleted", "（已删除）deleted", "（再次导入）imported again")]
                if was_deleted
                else []
            )
            result.conflicts.append(
                ResourceConflict(
                    f"{RESOURCE_TYPES[kind]}/{item.id}",
                    marks + [Difference(name, "（已存）stored", "（不同）differs") for name in fields],
                )
            )
        parts[kind] = items
    try:
        result.chart = PatientChart(patient=patient, **parts)
    except ValidationError as error:  # e.g. an incoming item referring to a soft-deleted encounter
        raise MergeInvalid("; ".join(str(e.get("msg", "")) for e in error.errors())[:300]) from None
    return result
