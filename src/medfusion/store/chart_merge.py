"""How an imported chart meets a stored one: identity check, then an additive merge that never removes.

Pure functions of two charts (no session). ``identity_differences`` says whether the incoming Patient is
the stored person; ``merge_chart`` adds what the stored chart lacks and reports, by name, each resource
whose id is stored with other content — such a resource is never overwritten (there is no version history
to keep the previous content in), so the caller refuses the import.

Difference values go to the user who is importing (API response details), never to logs or the audit
log: the stored side's name is shown as surname + ``*``, its ID and phone numbers masked
(GB/T 35273-2020 annex A partial display); the incoming side is the importer's own data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medfusion.interop.fhir.export import RESOURCE_TYPES
from medfusion.record.models import CHILD_KINDS, Patient, PatientChart, Sex

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
class ChartMerge:
    chart: PatientChart  # stored chart plus what the import adds, in chart order
    patient_changed: bool = False
    added: int = 0
    unchanged: int = 0
    conflicts: list[ResourceConflict] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.patient_changed or self.added > 0


def mask_middle(value: str, keep_start: int, keep_end: int) -> str:
    """``310106********0010``-style display mask (GB/T 35273-2020 annex A: partial display)."""
    hidden = len(value) - keep_start - keep_end
    return value if hidden <= 0 else value[:keep_start] + "*" * hidden + value[len(value) - keep_end :]


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


def _identifiers(patient: Patient) -> dict[str, set[str]]:
    """Identifiers beside the 身份证号 (MRN, 医保号 …) by system; kept in ``fhir_extra`` on import."""
    found: dict[str, set[str]] = {}
    for item in patient.fhir_extra.get("identifier") or []:
        if isinstance(item, dict) and item.get("system") and item.get("value") is not None:
            found.setdefault(str(item["system"]), set()).add(str(item["value"]))
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


def _merge_patient(existing: Patient, incoming: Patient) -> tuple[Patient, list[Difference]]:
    """Demographics: a value the record lacks is added, one it holds is kept; two different values of a
    contact field (phone, address, an unmodelled element) are a conflict."""
    merged: dict[str, Any] = existing.model_dump(mode="json")
    new = incoming.model_dump(mode="json")
    conflicts: list[Difference] = []
    for name in (*IDENTITY_FIELDS, *CONTACT_FIELDS):
        if merged.get(name) is None or (name == "sex" and merged[name] == Sex.unknown.value):
            if new.get(name) is not None:
                merged[name] = new[name]
        elif name in CONTACT_FIELDS and new.get(name) is not None and new[name] != merged[name]:
            conflicts.append(Difference(name, _shown(name, merged[name]), new[name]))
    extra: dict[str, Any] = dict(merged.get("fhir_extra") or {})
    for key, value in (new.get("fhir_extra") or {}).items():
        if key == "identifier" and isinstance(value, list):
            have = list(extra.get("identifier") or [])
            extra["identifier"] = have + [item for item in value if item not in have]
        elif key not in extra:
            extra[key] = value
        elif extra[key] != value:
            conflicts.append(Difference(key, "（已存）stored", "（不同）differs"))
    merged["fhir_extra"] = extra
    return Patient.model_validate(merged), conflicts


def _dump(kind: str, item: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = item.model_dump(mode="json", exclude={"text"} if kind == "notes" else None)
    return dumped


def merge_chart(existing: PatientChart, incoming: PatientChart) -> ChartMerge:
    """The stored chart plus what ``incoming`` adds; same-id resources with other content are conflicts
    (field names only: values of clinical resources are not echoed)."""
    patient, patient_conflicts = _merge_patient(existing.patient, incoming.patient)
    result = ChartMerge(chart=existing, patient_changed=patient != existing.patient)
    if patient_conflicts:
        result.conflicts.append(ResourceConflict(f"Patient/{existing.patient.id}", patient_conflicts))
    parts: dict[str, list[Any]] = {}
    for kind in CHILD_KINDS:
        stored = {item.id: item for item in getattr(existing, kind)}
        items = list(getattr(existing, kind))
        for item in getattr(incoming, kind):
            old = stored.get(item.id)
            if old is None:
                items.append(item)
                stored[item.id] = item
                result.added += 1
                continue
            before, after = _dump(kind, old), _dump(kind, item)
            if before == after:
                result.unchanged += 1
                continue
            fields = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
            result.conflicts.append(
                ResourceConflict(
                    f"{RESOURCE_TYPES[kind]}/{item.id}",
                    [Difference(name, "（已存）stored", "（不同）differs") for name in fields],
                )
            )
        parts[kind] = items
    result.chart = PatientChart(patient=patient, **parts)
    return result
