"""Imports map diagnoses without ICD-10 through the graph lexicon (by exact name), after the SNOMED table."""

from __future__ import annotations

from typing import Any

from medfusion.graph import Graph
from medfusion.graph.code_mapping import LexiconMapper
from medfusion.interop.fhir import bundle_to_charts
from medfusion.store.database import Database
from tests.interop.r4_examples import PID, SNOMED, bundle

LOCAL = "urn:oid:2.16.156.99999.1.local-dx"


def _condition(text: str | None, *codings: dict[str, str]) -> dict[str, Any]:
    code: dict[str, Any] = {"coding": list(codings)}
    if text is not None:
        code["text"] = text
    return {
        "resourceType": "Condition",
        "id": f"c-{abs(hash((text, str(codings)))) % 10_000}",
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "code": code,
        "subject": {"reference": PID},
    }


def test_a_local_code_is_mapped_by_its_name(packed_db: Database) -> None:
    mapper = LexiconMapper(Graph(packed_db))
    local = {"system": LOCAL, "code": "DX-0042", "display": "原发性高血压"}
    assert mapper("icd10", [local], None) == "I10"
    assert mapper("icd10", [{"system": LOCAL, "code": "DX-7"}], "原发性高血压") == "I10"
    # the SNOMED table still answers first (38341003 hypertensive disorder → I10 in code_maps.toml)
    assert mapper("icd10", [{"system": SNOMED, "code": "38341003"}], "whatever") == "I10"


def test_a_near_name_or_an_unknown_one_stays_unmapped(packed_db: Database) -> None:
    mapper = LexiconMapper(Graph(packed_db))
    assert mapper("icd10", [{"system": LOCAL, "code": "X", "display": "高血压病史待查伴头晕"}], None) is None
    assert mapper("icd10", [], "一种不存在的病") is None
    assert mapper("icd10", [], None) is None


def test_the_import_marks_lexicon_mappings_and_keeps_the_source_coding(packed_db: Database) -> None:
    mapper = LexiconMapper(Graph(packed_db))
    local = {"system": LOCAL, "code": "DX-0042", "display": "原发性高血压"}
    without = bundle_to_charts(bundle(_condition(None, local)))
    assert without.charts[0].conditions[0].icd10_code is None
    result = bundle_to_charts(bundle(_condition(None, local)), mapper=mapper)
    condition = result.charts[0].conditions[0]
    assert condition.icd10_code == "I10" and [(c.system, c.code) for c in condition.codings] == [
        (LOCAL, "DX-0042")
    ]
    assert result.summary()["unmapped"]["conditions"] == 0
    assert without.summary()["unmapped"]["conditions"] == 1
