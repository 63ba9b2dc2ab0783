"""用药审核 — the pharmacist's landing page: find a patient, then read what a medication review needs on one
screen: the medications (active first, with dose, route, frequency, start and stop in the display zone),
the medication allergies, the problem list and the renal and hepatic laboratory results that dose
adjustment turns on — the clinical information 《医疗机构处方审核规范》(国卫办医发〔2018〕14号) asks the
reviewing pharmacist to check a prescription against. Identifiers follow the display policy (masked for
the pharmacist, as for a nurse); reading the record is the audited ``patient.read`` of the chart page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from medfusion.apps.deps import database
from medfusion.apps.page_frame import error_page, render, signed_in, to_login
from medfusion.errors import MedFusionError
from medfusion.privacy.service import tag_identifiers
from medfusion.record.clinical_time import sort_time, today_local
from medfusion.record.models import (
    SEX_LABELS,
    AllergyCategory,
    MedicationStatus,
    Observation,
    ObservationCategory,
)
from medfusion.store.display import ShownChart, shown_chart
from medfusion.store.patient_service import PatientService
from medfusion.store.patients import PatientFilters
from medfusion.web.chart_view import MED_STATUS, age_text, diagnosis_summary

router = APIRouter(include_in_schema=False)

# LOINC codes of the results dose adjustment turns on: renal function (serum creatinine in μmol/L and in
# mg/dL, eGFR by MDRD and by CKD-EPI), potassium, hepatic function (ALT, AST, total bilirubin, albumin),
# and INR for anticoagulants
REVIEW_LABS = frozenset(
    {"14682-9", "2160-0", "33914-3", "62238-1", "2823-3", "1742-6", "1920-8", "1975-2", "1751-7", "6301-6"}
)


def medication_review(chart: ShownChart) -> dict[str, object]:
    """What the review screen shows from one chart."""
    meds = sorted(chart.medications, key=lambda m: sort_time(m.start), reverse=True)
    labs = [
        o
        for o in chart.observations
        if o.category is ObservationCategory.laboratory and o.loinc_code in REVIEW_LABS
    ]
    latest: dict[str, Observation] = {}  # the newest result of each code
    for o in sorted(labs, key=lambda o: sort_time(o.effective_at), reverse=True):
        latest.setdefault(str(o.loinc_code), o)
    return {
        "patient": chart.patient,
        "sex": SEX_LABELS[chart.patient.sex],
        "age": age_text(chart.patient.birth_date, today_local()),
        "active": [m for m in meds if m.status is MedicationStatus.active],
        "other": [m for m in meds if m.status is not MedicationStatus.active],
        "allergies": [a for a in chart.allergies if a.category is AllergyCategory.medication],
        "other_allergies": [a for a in chart.allergies if a.category is not AllergyCategory.medication],
        "diagnoses": diagnosis_summary(chart),
        "labs": list(latest.values()),
    }


@router.get("/pharmacy", response_class=HTMLResponse)
def pharmacy_page(
    request: Request,
    name: Annotated[str | None, Query(max_length=64)] = None,
    id_number: Annotated[str | None, Query(max_length=18)] = None,
    department: Annotated[str | None, Query(max_length=200)] = None,
    diagnosis_code: Annotated[str | None, Query(max_length=40)] = None,
    patient_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    principal = signed_in(request)
    if principal is None:
        return to_login(request)
    db = database(request)
    service = PatientService(db, principal)
    filters = PatientFilters(
        name=name or None,
        id_number=id_number or None,
        department=department or None,
        diagnosis_code=diagnosis_code or None,
    )
    searched = bool(filters.used())
    try:
        results = service.search(filters, limit=25) if searched or not patient_id else None
        review = None
        if patient_id:
            chart = service.chart(patient_id)
            shown = shown_chart(db, principal, chart, surface="web", redact=tag_identifiers)
            review = medication_review(shown)
    except MedFusionError as error:
        return error_page(request, principal, error)
    return render(
        request,
        "pharmacy.html",
        principal,
        filters=filters,
        results=results,
        review=review,
        med_status=MED_STATUS,
        sex_labels=SEX_LABELS,
    )
