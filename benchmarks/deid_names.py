"""Person-name precision and recall on every de-identification gold set (issue 15 part 6), plus the PERSON
spans found in the real EMR text of ``ccks2019_yidu_ner`` (which holds no person names, so every one there is
a false positive) and its clinical removal rate.

``python -m benchmarks.deid_names`` prints one JSON object; run it on an older tree (``PYTHONPATH=<old>/src``)
for the before figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medfusion.evaluation.deid_gold import synthetic_notes
from medfusion.privacy import analyze
from medfusion.privacy.gold import HARD_CASES, GoldDoc, hard_cases
from medfusion.privacy.metrics import clinical_removal_rate, score
from medfusion.settings import get_settings

CUELESS = Path(__file__).resolve().parents[1] / "tests" / "privacy" / "data" / "cueless_names.txt"


def _row(docs: list[GoldDoc], use_known: bool = True) -> dict[str, Any]:
    report = score((text, gold, analyze(text, known if use_known else ())) for text, gold, known in docs)
    person = next(r for r in report.per_type if r.type == "PERSON")
    return {
        "documents": report.documents,
        "overall": {"precision": report.overall_precision, "recall": report.overall_recall},
        "person": {
            "gold": person.gold,
            "predicted": person.predicted,
            "precision": person.precision,
            "recall": person.recall,
        },
    }


def run() -> dict[str, Any]:
    synthetic = synthetic_notes(120, seed=123)
    rows: dict[str, Any] = {
        "hard_cases": _row(hard_cases()),
        "heldout_cases": _row(hard_cases(HARD_CASES.with_name("heldout_cases.txt"))),
        "synthetic_notes_120_seed123": _row(synthetic),
        "synthetic_notes_120_seed123_no_known_names": _row(synthetic, use_known=False),
        "cueless_names": _row(hard_cases(CUELESS)),
    }
    source = get_settings().shared_data / "ccks2019_yidu_ner" / "train.jsonl"
    if source.exists():
        docs = []
        with source.open(encoding="utf-8") as fh:
            for line in fh:
                record = json.loads(line)
                text = record["originalText"]
                entities = [(e["start_pos"], e["end_pos"]) for e in record["entities"]]
                docs.append((text, entities, analyze(text)))
        rows["ccks2019_train"] = {
            "documents": len(docs),
            "person_spans": sum(1 for _, _, spans in docs for s in spans if s.type.value == "PERSON"),
            "clinical_removal_rate": round(clinical_removal_rate(docs), 5),
        }
    return rows


if __name__ == "__main__":
    print(json.dumps(run(), ensure_ascii=False, indent=1))
