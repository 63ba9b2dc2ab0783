"""What the chart page shows, computed from a chart (the record, or the role's view of it): the age, the
problem list with the principal diagnosis marked per encounter, lab trends, vitals panels and the AI
actions this user may start from the chart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from medfusion.apps.page_frame import app_links
from medfusion.feedback.service import write_back_title
from medfusion.record.clinical_time import SHANGHAI, age_on, display_zone, sort_time
from medfusion.record.models import (
    SEX_LABELS,
    ClinicalNote,
    DiagnosisRole,
    EncounterClass,
    Observation,
    ObservationCategory,
    PatientChart,
)
from medfusion.store.access import Principal
from medfusion.store.display import ShownChart
from medfusion.web.lab_trends import lab_trends, reference_text
from medfusion.web.vitals_chart import PANELS, vitals_svg

CLASS_LABELS = {
    EncounterClass.outpatient: "门诊",
    EncounterClass.inpatient: "住院",
    EncounterClass.emergency: "急诊",
}
FLAG_LABELS = {"H": "偏高 ↑", "L": "偏低 ↓", "HH": "危急高 ↑↑", "LL": "危急低 ↓↓", "A": "异常", "N": ""}

MED_STATUS = {
    "active": "在用",
    "completed": "已完成",
    "stopped": "已停用",
    "on-hold": "暂停",
    "cancelled": "已取消",
}


@dataclass
class DiagnosisLine:
    code: str
    name: str
    first: datetime | None
    last: datetime | None
    visits: int
    primary: bool  # the principal diagnosis (主要诊断) of the latest encounter that recorded diagnoses
    primary_visits: int = 0  # encounters at which it was the principal diagnosis


def _encounter_times(chart: PatientChart | ShownChart) -> dict[str | None, datetime]:
    """When each encounter that recorded a diagnosis happened (its admission, else its latest diagnosis)."""
    admitted = {e.id: e.admitted_at for e in chart.encounters if e.admitted_at}
    when: dict[str | None, datetime] = {}
    for c in chart.conditions:
        at = admitted.get(c.encounter_id or "") or c.recorded_at
        if at is not None:
            when[c.encounter_id] = max(when.get(c.encounter_id, at), at)
        else:
            when.setdefault(c.encounter_id, sort_time(None))
    return when


def principal_diagnoses(chart: PatientChart | ShownChart) -> dict[str | None, list[str]]:
    """Each encounter's principal diagnosis labels (a role is per encounter: 病案首页 has one 主要诊断)."""
    found: dict[str | None, list[str]] = {}
    for c in chart.conditions:
        if c.role is DiagnosisRole.primary:
            found.setdefault(c.encounter_id, []).append(c.label)
    return found


def diagnosis_summary(chart: PatientChart | ShownChart) -> list[DiagnosisLine]:
    """One line per ICD-10 code (a problem list), most recently recorded first. A condition's role belongs to
    the encounter that recorded it, so a code is marked 主要诊断 only when it is the principal diagnosis of
    the latest encounter with diagnoses — not because it was principal at some earlier visit — and the
    line counts the encounters at which it was principal."""
    times = _encounter_times(chart)
    latest = max(times, key=lambda e: times[e]) if times else None
    lines: dict[str, DiagnosisLine] = {}
    for c in chart.conditions:
        line = lines.setdefault(c.code_label, DiagnosisLine(c.code_label, c.label, None, None, 0, False))
        line.visits += 1
        if c.role is DiagnosisRole.primary:
            line.primary_visits += 1
            line.primary = line.primary or c.encounter_id == latest
        if c.recorded_at:
            line.first = c.recorded_at if line.first is None else min(line.first, c.recorded_at)
            line.last = c.recorded_at if line.last is None else max(line.last, c.recorded_at)
    floor = datetime.min.replace(tzinfo=SHANGHAI)
    return sorted(lines.values(), key=lambda d: (d.primary, d.last or floor), reverse=True)


def age_text(birth: date | str | None, today: date) -> str:
    """The age shown beside the name: whole years (months or days for infants); a birth year alone (a
    coarsened view) gives the two ages it allows; none → 年龄未知."""
    if birth is None or birth == "":
        return "年龄未知"
    if isinstance(birth, str):
        if len(birth) == 4 and birth.isdigit():
            years = today.year - int(birth)
            return f"{max(years - 1, 0)}–{years} 岁" if years > 0 else "不足 1 岁"
        try:
            birth = date.fromisoformat(birth)
        except ValueError:
            return "年龄未知"
    if birth > today:
        return "年龄未知"
    years = age_on(birth, today)
    if years >= 1:
        return f"{years} 岁"
    months = (today.year - birth.year) * 12 + today.month - birth.month - (today.day < birth.day)
    return f"{months} 个月" if months >= 1 else f"{(today - birth).days} 天"


# AI actions on a chart: (app page, button, what it does). Shown only when that app's page is installed and
# this user may open it (its AppSpec.nav link); each page takes ?patient_id= and builds its case from it.
CHART_ACTIONS = (
    ("/consult", "会诊意见", "口袋主任医师：鉴别诊断、建议检查与治疗"),
    ("/mdt", "多学科会诊", "多个专科分别作答，形成会诊纪要"),
    ("/ask", "带病历提问", "以本病历为上下文的智能问答"),
)


def chart_actions(principal: Principal, patient_id: str) -> list[dict[str, str]]:
    offered = {link.path for link in app_links(principal)}
    return [
        {"href": f"{path}?{urlencode({'patient_id': patient_id})}", "title": title, "hint": hint}
        for path, title, hint in CHART_ACTIONS
        if path in offered
    ]


@dataclass(frozen=True)
class VitalsTable:
    """The latest measurements as a table: one row per time, one column per vital sign (with its unit)."""

    columns: list[tuple[str, str]]  # (name, unit)
    rows: list[tuple[datetime, dict[str, str]]]


def latest_vitals(vitals: list[Observation], times: int = 3) -> VitalsTable:
    timed = [o for o in vitals if o.effective_at is not None]
    recent = sorted({o.effective_at for o in timed if o.effective_at}, reverse=True)[:times]
    rows: list[tuple[datetime, dict[str, str]]] = []
    columns: dict[str, str] = {}
    for when in recent:
        cells: dict[str, str] = {}
        for o in timed:
            if o.effective_at == when:
                shown = f"{o.value:g}" if o.value is not None else (o.value_text or "")
                cells[o.name] = shown
                columns.setdefault(o.name, o.unit or "")
        rows.append((when, cells))
    order = {s.name: i for i, s in enumerate(s for panel in PANELS for s in panel.series)}
    ordered = sorted(columns.items(), key=lambda c: (order.get(c[0], len(order)), c[0]))
    return VitalsTable(columns=ordered, rows=rows)


def written_back(patient_id: str, note: ClinicalNote) -> bool:
    """A confirmed assistive draft the feedback service wrote into the chart (``AppSpec.write_back``: one
    section titled like the app's document, id ``<patient>-<agent>-<run>``). Its text is the draft's Markdown,
    so the page renders it as a document instead of showing ``#`` and ``**`` (issue 16)."""
    prefix = f"{patient_id}-"
    if not note.id.startswith(prefix) or len(note.sections) != 1:
        return False
    agent, _, run = note.id.removeprefix(prefix).rpartition("-")
    title = write_back_title(agent.replace("-", "_")) if agent and len(run) == 8 else None
    return title is not None and note.title == title == note.sections[0].title


def chart_view(chart: PatientChart | ShownChart) -> dict[str, Any]:
    """Everything the chart page shows, newest first, with abnormal results marked."""
    encounters = {e.id: e for e in chart.encounters}
    labs = sorted(
        (o for o in chart.observations if o.category is ObservationCategory.laboratory),
        key=lambda o: sort_time(o.effective_at),
        reverse=True,
    )
    vitals = [o for o in chart.observations if o.category is ObservationCategory.vital_signs]
    return {
        "chart": chart,
        "patient": chart.patient,
        "sex": SEX_LABELS[chart.patient.sex],
        "age": age_text(chart.patient.birth_date, datetime.now(display_zone()).date()),
        "encounters": sorted(chart.encounters, key=lambda e: sort_time(e.admitted_at), reverse=True),
        "class_labels": CLASS_LABELS,
        "diagnoses": diagnosis_summary(chart),
        "principal_of": principal_diagnoses(chart),
        "encounter_of": encounters,
        "med_status": MED_STATUS,
        "labs": labs,
        "lab_trends": lab_trends(labs),
        "reference_text": reference_text,
        "abnormal_count": sum(o.is_abnormal for o in labs),
        "flag_labels": FLAG_LABELS,
        "vitals_svg": vitals_svg(vitals),
        "latest_vitals": latest_vitals(vitals),
        "medications": sorted(chart.medications, key=lambda m: sort_time(m.start), reverse=True),
        "notes": sorted(chart.notes, key=lambda n: n.written_at, reverse=True),
        "documents": {n.id for n in chart.notes if written_back(chart.patient.id, n)},
    }
