from __future__ import annotations

import json
from pathlib import Path

import pytest

from medfusion.errors import InvalidInput
from medfusion.graph import Graph, importers
from medfusion.graph.model import Relation
from medfusion.store.database import Database
from tests.cli.test_cli import run
from tests.conftest import shared_dataset

TRIPLES = """head,head_type,relation,tail,tail_type,source
急性上呼吸道感染,disease,has_symptom,咽痛,symptom,demo
急性上呼吸道感染,disease,has_symptom,发热,symptom,demo
急性上呼吸道感染,disease,has_symptom,流涕,symptom,demo
急性上呼吸道感染,disease,belongs_to_department,全科医学科,department,demo
社区获得性肺炎,disease,has_symptom,发热,symptom,demo
社区获得性肺炎,disease,has_symptom,咳嗽,symptom,demo
社区获得性肺炎,disease,has_symptom,咳痰,symptom,demo
社区获得性肺炎,disease,belongs_to_department,呼吸与危重症医学科,department,demo
急性心肌梗死,disease,has_symptom,胸痛,symptom,demo
急性心肌梗死,disease,belongs_to_department,心血管内科,department,demo
"""


@pytest.fixture
def graph(db: Database, tmp_path: Path) -> Graph:
    path = tmp_path / "triples.csv"
    path.write_text(TRIPLES, encoding="utf-8")
    graph = Graph(db)
    counts = graph.store.add(importers.triple_csv(path))
    assert counts.new_relations == 10 and counts.new_entities == 12  # 3 diseases, 6 symptoms, 3 departments
    assert graph.store.add(importers.triple_csv(path)).new_relations == 0  # idempotent
    return graph


def test_specific_symptoms_weigh_more(graph: Graph) -> None:
    ranked = graph.queries.rank_by_symptom_overlap(["发热", "咳嗽"])
    assert ranked[0].disease == "社区获得性肺炎" and ranked[0].supporting == ["发热", "咳嗽"]
    assert ranked[0].not_observed == ["咳痰"] and ranked[0].departments == ["呼吸与危重症医学科"]
    assert ranked[1].disease == "急性上呼吸道感染" and ranked[0].score > ranked[1].score


def test_neighbours_and_departments(graph: Graph) -> None:
    out = graph.queries.neighbours("急性心肌梗死")
    assert {(n.relation, n.name) for n in out} == {
        ("has_symptom", "胸痛"),
        ("belongs_to_department", "心血管内科"),
    }
    assert all(n.source == "demo" for n in out)
    back = graph.queries.neighbours("发热", Relation.has_symptom)
    assert {n.name for n in back} == {"急性上呼吸道感染", "社区获得性肺炎"} and back[0].direction == "in"
    assert graph.queries.departments_for(["胸痛"])[0] == ("心血管内科", 1)


def test_bad_triples_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(TRIPLES + "阿司匹林,drug,cures,头痛,symptom,demo\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"bad.csv:12"):
        list(importers.triple_csv(path))


@pytest.mark.dataset
def test_kg39_import_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = shared_dataset("kg39_disease")
    code, out, _ = run(["graph", "import", "kg39", str(folder)], capsys)
    counts = json.loads(out)
    assert code == 0 and counts["triples"] == 175_539 and counts["by_relation"]["has_symptom"] == 48_582
    code, out, _ = run(["graph", "query", "diagnose", "--symptoms", "咳嗽,咽痛,流鼻涕", "--k", "3"], capsys)
    ranked = json.loads(out)
    assert code == 0 and len(ranked) == 3 and all("咳嗽" in r["supporting"] for r in ranked)


@pytest.mark.dataset
def test_code_list_and_dictionary_importers(capsys: pytest.CaptureFixture[str]) -> None:
    for fmt, dataset in (
        ("icd10", "icd10_cn_categories"),
        ("icd9cm3", "icd9cm3_cn_procedures"),
        ("drg", "chs_drg_catalogue"),
        ("medical-kg", "medical_kg"),
    ):
        code, out, err = run(["graph", "import", fmt, str(shared_dataset(dataset))], capsys)
        assert code == 0, err
        report = json.loads(out)
        counts = report.get("codes", report)
        assert counts["new_entities"] > 0, fmt
    from medfusion.store.database import get_database

    graph = Graph(get_database())
    assert [(e.name, e.code_system) for e in graph.lexicon.resolve("I10")] == [
        ("特发性(原发性)高血压", "ICD-10")
    ]
    assert graph.lexicon.resolve("03.3101")[0].name == "腰椎穿刺术"
    assert graph.lexicon.resolve("A00.000x001")[0].name == "古典生物型霍乱"
    code, out, _ = run(["graph", "query", "neighbours", "肺泡蛋白质沉积症"], capsys)
    assert any(n["relation"] == "has_symptom" for n in json.loads(out))
    code, _, err = run(["graph", "import", "nonsense"], capsys)
    assert code != 0 and "unknown format" in err


def test_vocabulary_and_jsonl_formats(tmp_path: Path, db: Database) -> None:
    vocab = tmp_path / "v.csv"
    vocab.write_text(
        "name,type,code_system,code,synonyms\n阿司匹林,drug,ATC,B01AC06,aspirin|乙酰水杨酸\n", "utf-8"
    )
    graph = Graph(db)
    graph.store.add_codes(importers.vocabulary_csv(vocab), source="test")
    assert [e.code for e in graph.lexicon.resolve("aspirin")] == ["B01AC06"] and graph.lexicon.resolve(
        "b01ac06"
    )
    lines = tmp_path / "t.jsonl"
    lines.write_text(
        '{"head": "阿司匹林", "head_type": "drug", "relation": "interacts_with", "tail": "布洛芬",'
        ' "tail_type": "drug", "severity": "moderate", "source": "FDA 2006"}\n[1, 2]\n',
        "utf-8",
    )
    with pytest.raises(InvalidInput, match=r"t.jsonl:2"):
        graph.store.add(importers.triple_jsonl(lines))
    assert graph.queries.path("aspirin", "布洛芬") == []  # a file with a bad line imports nothing
    lines.write_text(lines.read_text("utf-8").splitlines()[0] + "\n", "utf-8")
    graph.store.add(importers.triple_jsonl(lines))
    assert graph.queries.path("aspirin", "布洛芬")[0].relation == "interacts_with"
    bad = tmp_path / "bad.csv"
    bad.write_text("name,type\n某物,planet\n", "utf-8")
    with pytest.raises(InvalidInput, match=r"bad.csv:2"):
        list(importers.vocabulary_csv(bad))
