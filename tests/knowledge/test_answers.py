"""Cited answers over the shipped packs: every sentence cites evidence that exists; graph facts and
conflict checks join passages; a low-confidence question gets a second, expanded round; the LLM seam
accepts only cited sentences."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from medfusion.graph import Graph
from medfusion.graph.model import EntityType, Relation, Triple
from medfusion.knowledge import packs
from medfusion.knowledge.answers import Answer, Answerer, PatientContext
from medfusion.knowledge.base import KnowledgeBase
from medfusion.store.database import Database


@pytest.fixture(scope="module")
def answerer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Answerer]:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('answers') / 'kb.db'}")
    db.upgrade()
    for path in packs.shipped():
        packs.install(db, path)
    yield Answerer(KnowledgeBase(db), Graph(db))
    db.dispose()


def _alias(graph: Graph, alias: str, preferred: str) -> None:
    """A synonym no document uses (idempotent), so only expansion can reach the preferred name."""
    triple = Triple(
        head=alias,
        head_type=EntityType.disease,
        relation=Relation.synonym_of,
        tail=preferred,
        tail_type=EntityType.disease,
        source="test synonyms",
    )
    graph.store.add([triple])


def _every_sentence_is_cited(answer: Answer) -> None:
    ids = {e.id for e in answer.evidence}
    assert answer.sentences and all(set(s.citations) <= ids for s in answer.sentences)
    assert answer.status == "needs_clinician_confirmation" and answer.engine.startswith("specialist")


def test_quoted_sentences_point_at_their_exact_span(answerer: Answerer) -> None:
    answer = answerer.answer("痛风急性发作怎么治疗")
    _every_sentence_is_cited(answer)
    assert any("秋水仙碱" in s.text for s in answer.sentences)
    for sentence in answer.sentences:
        if sentence.location is None:
            continue
        evidence = next(e for e in answer.evidence if e.id == sentence.citations[0])
        assert evidence.kind == "passage" and evidence.source.startswith("pack:starter-diseases/")
        loc = sentence.location
        assert evidence.citation is not None and loc.source == evidence.source
        offset = loc.start - evidence.citation.start  # the passage is document[citation.start:citation.end]
        assert evidence.text[offset : offset + len(sentence.text)] == sentence.text
        assert loc.end - loc.start == len(sentence.text)


def test_graph_facts_and_conflicts_join_the_answer(answerer: Answerer) -> None:
    answer = answerer.answer("哮喘病人能用普萘洛尔吗", PatientContext(conditions=["支气管哮喘"]))
    _every_sentence_is_cited(answer)
    conflict = next(s for s in answer.sentences if "contraindicated" in s.text)
    cited = next(e for e in answer.evidence if e.id == conflict.citations[0])
    assert (
        cited.kind == "graph" and "GINA" in cited.source and cited.review_status == "needs_clinician_review"
    )
    department = answerer.answer("心房颤动应该挂什么科")
    assert any("心房颤动的就诊科室：心血管内科" in s.text for s in department.sentences)


def test_symptoms_point_to_diseases_and_departments(answerer: Answerer) -> None:
    answer = answerer.answer("咳嗽咳痰发热应该看哪个科")
    _every_sentence_is_cited(answer)
    assert any("提示的可能疾病" in s.text and "呼吸与危重症医学科" in s.text for s in answer.sentences)


def test_low_confidence_triggers_a_second_round_with_graph_synonyms(answerer: Answerer) -> None:
    _alias(answerer.graph, "鼓包气病", "腹股沟疝")
    answer = answerer.answer("鼓包气病")
    assert answer.rounds == 2 and "腹股沟疝" in answer.expanded_terms
    assert any(e.source == "pack:starter-diseases/腹股沟疝" for e in answer.evidence)


def test_nothing_is_invented_when_nothing_is_known(answerer: Answerer) -> None:
    answer = answerer.answer("量子引力的弦论解释")
    assert answer.sentences == [] and answer.confidence < 0.35


def test_cli_ask_json(
    answerer: Answerer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from medfusion.settings import get_settings
    from tests.cli.test_cli import run

    monkeypatch.setenv("MEDFUSION_DATABASE_URL", answerer.kb.db.url)
    get_settings.cache_clear()
    code, out, _ = run(["kb", "ask", "华法林和布洛芬能一起吃吗", "--json"], capsys)
    answer = json.loads(out)
    assert code == 0 and any("major" in s["text"] for s in answer["sentences"])
    code, _, err = run(["kb", "ask", "  "], capsys)
    assert code != 0 and "question" in err


def test_search_expansion_adds_every_name_the_entity_goes_by(answerer: Answerer) -> None:
    from medfusion.knowledge.expansion import synonym_terms

    terms = synonym_terms(answerer.graph, "心梗后胸痛")
    assert "急性ST段抬高型心肌梗死" in terms and "心梗" not in terms
    # an alias no document uses reaches the preferred name's document only through expansion
    _alias(answerer.graph, "腹沟鼓包症", "腹股沟疝")
    sparse = ("words", "bigrams")
    plain = answerer.kb.search("腹沟鼓包症", k=3, channels=sparse)
    widened = answerer.kb.search(
        "腹沟鼓包症", k=3, channels=sparse, expansions=synonym_terms(answerer.graph, "腹沟鼓包症")
    )
    assert "pack:starter-diseases/腹股沟疝" not in [h.source for h in plain]
    assert widened[0].source == "pack:starter-diseases/腹股沟疝"


def test_cli_search_expand(
    answerer: Answerer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from medfusion.settings import get_settings
    from tests.cli.test_cli import run

    _alias(answerer.graph, "腹沟鼓包症", "腹股沟疝")
    monkeypatch.setenv("MEDFUSION_DATABASE_URL", answerer.kb.db.url)
    get_settings.cache_clear()
    code, out, _ = run(["kb", "search", "腹沟鼓包症", "--k", "1", "--expand", "--json"], capsys)
    assert code == 0 and json.loads(out)[0]["source"] == "pack:starter-diseases/腹股沟疝"


def test_a_checked_negative_is_stated_with_its_limits(answerer: Answerer) -> None:
    answer = answerer.answer("能加用布洛芬吗？", PatientContext(medications=["二甲双胍"]))
    negative = [s for s in answer.sentences if "未发现" in s.text]
    assert negative and "布洛芬" in negative[0].text and "需医生确认" in negative[0].text
    unchecked = answerer.answer("能加用布洛芬吗？").sentences  # no context, one drug: nothing was checked
    assert not any("未发现" in s.text for s in unchecked)


def test_a_named_disease_s_section_is_looked_up_not_only_ranked(answerer: Answerer) -> None:
    answer = answerer.answer("高血压的一线治疗药物有哪些？")
    sections = [e.citation.section for e in answer.evidence if e.citation is not None]
    assert any(s.startswith("原发性高血压") and s.endswith("一线治疗") for s in sections)
    # 高血压 names a symptom too, but a treatment question is about the disease: its drugs are given
    assert any("原发性高血压的常用药物" in s.text for s in answer.sentences)
