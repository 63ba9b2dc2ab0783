"""De-identify a whole patient chart consistently: structured fields and the notes that mention them get
the same surrogates, and every date of the patient moves by the same offset (intervals kept).

Pseudonymisation only: a record has typed fields (an ID number must stay a valid ID number), so tag/mask
apply to free text, not to charts. Clinician names in note authors are pseudonymised too. Unmodelled FHIR
elements (``fhir_extra``) may hold identifiers and are removed — counted in the result, never silently.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from medfusion.privacy.analyzer import Analyzer
from medfusion.privacy.entities import Span
from medfusion.privacy.operators import Mode, apply
from medfusion.privacy.pseudonyms import Pseudonymizer
from medfusion.record.districts import DISTRICTS
from medfusion.record.id_card import make_id_number, parse_id_number
from medfusion.record.models import CHILD_KINDS, PatientChart

_TIME_FIELDS = (
    "admitted_at",
    "discharged_at",
    "onset_date",
    "recorded_at",
    "effective_at",
    "performed_at",
    "start",
    "stop",
    "recorded_date",
    "occurred_at",
    "written_at",
)


class DeidChart(BaseModel):
    chart: PatientChart
    counts: dict[str, int]
    date_offset_days: int
    removed_fhir_extra: int


def _shift(value: Any, days: int) -> Any:
    if isinstance(value, datetime | date):
        return value + timedelta(days=days)
    return value


def deidentify_bundle(
    bundle: Any, pseudonymizer: Pseudonymizer, analyzer: Analyzer | None = None
) -> dict[str, Any]:
    """A FHIR R4 Bundle in, the same patients pseudonymised out (through the record model, so structured
    fields and notes stay consistent)."""
    from medfusion.interop.fhir import bundle_for, bundle_to_charts

    charts = bundle_to_charts(bundle).charts
    return bundle_for([deidentify_chart(chart, pseudonymizer, analyzer).chart for chart in charts])


def deidentify_chart(
    chart: PatientChart, pseudonymizer: Pseudonymizer, analyzer: Analyzer | None = None
) -> DeidChart:
    analyzer = analyzer or Analyzer()
    p = chart.patient
    offset = pseudonymizer.date_offset(p.id)
    counts: Counter[str] = Counter()
    removed = len(p.fhir_extra)
    birth = p.birth_date + timedelta(days=offset) if p.birth_date else None  # unknown stays unknown
    patient: dict[str, Any] = {
        "id": "D" + pseudonymizer.digest("PATIENT_ID", p.id).hex()[:12],
        "name": pseudonymizer.name(p.name) if p.name else None,
        "sex": p.sex,
        "birth_date": birth,
    }
    if p.id_number:
        n = int.from_bytes(pseudonymizer.digest("ID_NUMBER", p.id_number), "big")
        parity = int(p.id_number[16]) % 2 if len(p.id_number) == 18 else 1
        patient["id_number"] = make_id_number(
            DISTRICTS[n % len(DISTRICTS)].code,
            birth or parse_id_number(p.id_number).birth_date + timedelta(days=offset),
            (n >> 8) % 500 * 2 + parity,
        )
        counts["ID_NUMBER"] += 1
    if p.phone:
        patient["phone"] = pseudonymizer.phone(p.phone)
        counts["PHONE"] += 1
    if p.address:
        line = pseudonymizer.address(p.address.line or p.address.text)
        patient["address"] = {
            **p.address.model_dump(exclude={"line", "postal_code"}),
            "line": line.split("区")[-1],
        }
        counts["ADDRESS"] += 1
    counts["PERSON"] += 1
    known = [p.name] if p.name else []
    children: dict[str, list[dict[str, Any]]] = {}
    for kind in CHILD_KINDS:
        items = []
        for item in getattr(chart, kind):
            data = item.model_dump(exclude={"text", "fhir_extra"} if kind == "notes" else {"fhir_extra"})
            removed += len(item.fhir_extra)
            for field in _TIME_FIELDS:
                if field in data:
                    data[field] = _shift(data[field], offset)
            if kind == "encounters" and data.get("bed"):
                data["bed"] = pseudonymizer.digits_like("BED", data["bed"])
            if kind == "notes":
                if data["author"]:
                    data["author"] = pseudonymizer.name(data["author"])
                for section in data["sections"]:
                    spans: list[Span] = analyzer.analyze(section["text"], known)
                    section["text"], _ = apply(section["text"], spans, Mode.pseudo, pseudonymizer, offset)
                    counts.update(s.type.value for s in spans)
            items.append(data)
        children[kind] = items
    new_chart = PatientChart.model_validate({"patient": patient, **children})
    return DeidChart(
        chart=new_chart, counts=dict(counts), date_offset_days=offset, removed_fhir_extra=removed
    )
