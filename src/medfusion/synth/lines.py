"""One synthetic resident as one output line: our record as JSON, or an R4 Bundle (``--format fhir``;
``fhir-synthea`` is the SNOMED CT / LOINC coded Synthea-style Bundle of ``--profile synthea``)."""

from __future__ import annotations

import json

from medfusion.interop.fhir import chart_to_bundle
from medfusion.record.models import PatientChart
from medfusion.synth.population import generate_record
from medfusion.synth.synthea import synthea_bundle


def resident_line(seed: int, index: int, fmt: str, id_prefix: str, plant_pii: bool) -> str:
    record = generate_record(seed, index, id_prefix, plant_pii)
    if fmt == "fhir":
        payload = chart_to_bundle(PatientChart.model_validate(record))
    elif fmt == "fhir-synthea":  # SNOMED CT / LOINC coded, Synthea-shaped (synth/synthea.py)
        payload = synthea_bundle(PatientChart.model_validate(record))
    else:
        payload = record
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
