"""The evaluation behind `make bench graph`, run small: every alert-level rule of the seed set planted with
concrete members is found, and random plans agree pair by pair with an oracle read from the CSV files."""

from __future__ import annotations

from benchmarks import graph_eval


def test_planted_recall_is_complete_and_clean_plans_stay_silent() -> None:
    result = graph_eval.run(random_plans=80, seed=3)
    assert result["planted_plans"] >= 150 and result["planted_recall"] == 1.0, result["missed"]
    assert result["random_plans_disagreeing"] == 0, result["disagreement_examples"]
    assert result["clean_plans"] > 0 and result["clean_plans_with_false_alarm"] == 0


def test_the_oracle_is_not_trivially_agreeable() -> None:
    oracle = graph_eval.Oracle()
    assert oracle.alerts([], [], ["华法林", "布洛芬"]) == {
        ("drug_interaction", *sorted(("华法林", "布洛芬")))
    }
    assert oracle.alerts([], ["复方磺胺甲噁唑"], ["呋塞米"]) == set()  # graded "none": no alert
    assert oracle.alerts(["支气管哮喘"], [], ["普萘洛尔"]) == {("contraindication", "普萘洛尔", "支气管哮喘")}
