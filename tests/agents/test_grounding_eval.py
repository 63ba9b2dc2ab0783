"""The evaluation behind `make bench grounding`, run small: planted numbers, doses (in digits and in
Chinese numerals), drugs (known to the graph or only by their INN stem) and diagnoses are caught, and
clean drafts — as written and reworded — are not flagged."""

from __future__ import annotations

from benchmarks import grounding_eval


def test_planted_claims_are_caught_and_clean_drafts_pass() -> None:
    result = grounding_eval.run(diseases=12, seed=7)
    assert set(result["recall_by_plant"]) == set(grounding_eval.PLANTS)
    assert result["planted"] > 500 and result["planted_recall"] >= 0.98, result["missed_examples"]
    assert result["clean_drafts"] > 300 and result["false_flag_rate"] <= 0.02, result["flag_examples"]
    assert result["unknown_drugs_outside_graph"] >= 5  # the stem rule is really exercised
