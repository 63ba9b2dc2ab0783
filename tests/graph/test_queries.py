"""Graph queries: the two disease rankers from symptoms (specificity-weighted overlap, naive Bayes over
symptom profiles), each checked against the formula in its docstring, and the profile it reads."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from medfusion.graph import Graph, importers
from medfusion.graph.queries import P_ABSENT_IN, P_ABSENT_OUT, P_PRESENT_IN, P_PRESENT_OUT
from medfusion.store.database import Database

TRIPLES = """head,head_type,relation,tail,tail_type,source
急性上呼吸道感染,disease,has_symptom,发热,symptom,demo
急性上呼吸道感染,disease,has_symptom,咽痛,symptom,demo
急性上呼吸道感染,disease,has_symptom,阵发性喷嚏,symptom,demo
社区获得性肺炎,disease,has_symptom,发热,symptom,demo
社区获得性肺炎,disease,has_symptom,咳嗽,symptom,demo
社区获得性肺炎,disease,belongs_to_department,呼吸与危重症医学科,department,demo
手足口病,disease,has_symptom,发热,symptom,demo
手足口病,disease,has_symptom,皮疹,symptom,demo
阵发性喷嚏,symptom,member_of,打喷嚏,symptom,demo
"""


@pytest.fixture
def graph(db: Database, tmp_path: Path) -> Graph:
    (tmp_path / "t.csv").write_text(TRIPLES, encoding="utf-8")
    graph = Graph(db)
    graph.store.add(importers.triple_csv(tmp_path / "t.csv"))
    return graph


def test_symptom_overlap_weighs_each_symptom_by_log_1_plus_diseases_over_listing(graph: Graph) -> None:
    ranked = graph.queries.rank_by_symptom_overlap(["发热", "咳嗽"])
    # 3 diseases: 发热 is listed by 3 → log(1 + 3/3); 咳嗽 by 1 → log(1 + 3/1)
    assert ranked[0].disease == "社区获得性肺炎"
    assert ranked[0].score == round(math.log(2) + math.log(4), 4)
    assert ranked[0].departments == ["呼吸与危重症医学科"] and ranked[0].supporting == ["发热", "咳嗽"]
    assert [c.disease for c in ranked[1:]] == ["急性上呼吸道感染", "手足口病"]  # ties by name
    assert graph.queries.names_by_symptom_overlap(["发热", "咳嗽"]) == [c.disease for c in ranked]
    assert graph.queries.rank_by_symptom_overlap([" ", ""]) == []


def test_symptom_profile_adds_the_broader_symptoms(graph: Graph) -> None:
    assert graph.queries.symptom_profile("急性上呼吸道感染") == ["发热", "咽痛", "阵发性喷嚏", "打喷嚏"]


def test_naive_bayes_is_the_likelihood_of_present_and_absent_findings(graph: Graph) -> None:
    ranked = graph.queries.rank_by_naive_bayes(
        ["发热", "打喷嚏"], ["咳嗽"], candidates=["社区获得性肺炎", "急性上呼吸道感染"]
    )
    top, other = ranked
    assert top.disease == "急性上呼吸道感染"  # 打喷嚏 reaches its profile through 阵发性喷嚏
    assert top.log_likelihood == round(2 * math.log(P_PRESENT_IN) + math.log(P_ABSENT_OUT), 4)
    assert other.log_likelihood == round(
        math.log(P_PRESENT_IN) + math.log(P_PRESENT_OUT) + math.log(P_ABSENT_IN), 4
    )
    assert other.opposing == ["咳嗽"] and other.unexplained == ["打喷嚏"]
    assert round(top.probability + other.probability, 3) == 1.0


def test_naive_bayes_open_set_scores_the_overlap_candidates(graph: Graph) -> None:
    ranked = graph.queries.rank_by_naive_bayes(["发热", "皮疹"], [])
    assert ranked[0].disease == "手足口病"
    assert {r.disease for r in ranked} == set(graph.queries.names_by_symptom_overlap(["发热", "皮疹"]))


def test_departments_come_from_diseases_or_the_diseases_symptoms_point_at(graph: Graph) -> None:
    assert graph.queries.departments_for(["社区获得性肺炎"]) == [("呼吸与危重症医学科", 1)]
    assert graph.queries.departments_for(["咳嗽"]) == [("呼吸与危重症医学科", 1)]
