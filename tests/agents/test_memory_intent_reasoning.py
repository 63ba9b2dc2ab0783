"""Memory (time-event-case-person entries, every N turns, decay, cross-session recall), intent recognition
(rules + model, multi-intent, clarification) and the reasoning strategies (tree-of-thought pruning)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from medfusion.agents.intent import recognise
from medfusion.agents.memory import Memory, decay
from medfusion.agents.reasoning import differential
from medfusion.graph import Graph
from medfusion.llm import GeneralModel
from medfusion.store.database import Database
from tests.fakes.openai_server import FakeOpenAI, answer, general_model, json_answer, status

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _model(server: FakeOpenAI, tmp_path: Path) -> GeneralModel:
    return general_model(server, tmp_path / "v")


# --- memory --------------------------------------------------------------------------------------
def test_turns_are_summarised_every_n_turns_into_quadruples(packed_db: Database) -> None:
    memory = Memory(packed_db, graph=Graph(packed_db), every=4)
    assert memory.add_turn("u1", "s1", "user", "我妈昨天开始发热，还有咳嗽", now=T0) == []
    memory.add_turn("u1", "s1", "assistant", "建议测体温并观察。", now=T0)
    memory.add_turn("u1", "s1", "user", "她对青霉素过敏", now=T0)
    entries = memory.add_turn("u1", "s1", "assistant", "已记录过敏史。", now=T0)
    assert len(entries) == 2
    first, second = entries
    assert (first.time, first.person) == ("昨天", "我妈") and "发热" in first.case and first.source == "rules"
    assert "青霉素" in second.case and second.unusual  # an allergy is kept longer
    assert memory.add_turn("u1", "s1", "user", "谢谢", now=T0) == []  # counting starts again


def test_recall_crosses_sessions_and_ranks_by_relevance(packed_db: Database) -> None:
    memory = Memory(packed_db, graph=Graph(packed_db), every=1)
    memory.add_turn("u1", "monday", "user", "我有高血压，在吃氨氯地平", now=T0)
    memory.add_turn("u1", "monday", "user", "孩子上周腹泻", now=T0)
    memory.add_turn("u2", "other", "user", "我有高血压", now=T0)
    recalled = memory.recall("u1", "氨氯地平可以和别的药一起吃吗", now=T0 + timedelta(days=1))
    assert recalled and "氨氯地平" in recalled[0].case
    assert all("腹泻" not in r.case for r in recalled)  # irrelevant memories are not recalled
    assert memory.recall("u3", "高血压") == []  # owners never see each other's memories


def test_unused_memories_decay_and_unusual_ones_decay_slower() -> None:
    assert decay(T0, T0 + timedelta(days=30), unusual=False) == pytest.approx(0.5)
    assert decay(T0, T0 + timedelta(days=90), unusual=True) == pytest.approx(0.5)
    assert decay(T0, T0 + timedelta(days=60), unusual=False) < decay(
        T0, T0 + timedelta(days=60), unusual=True
    )


def test_recall_refreshes_what_it_uses(packed_db: Database) -> None:
    memory = Memory(packed_db, graph=Graph(packed_db), every=1)
    memory.add_turn("u1", "s", "user", "我有糖尿病，在用二甲双胍", now=T0)
    later = T0 + timedelta(days=60)
    first = memory.recall("u1", "二甲双胍", now=later)[0]
    again = memory.recall("u1", "二甲双胍", now=later)[0]
    assert again.weight is not None and first.weight is not None and again.weight > first.weight


def test_the_model_writes_the_summary_when_configured(
    packed_db: Database, openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    openai_server.queue(
        json_answer(
            {
                "entries": [
                    {
                        "time": "三天前",
                        "event": "开始服用布洛芬后胃痛",
                        "case": "布洛芬、胃痛",
                        "person": "本人",
                    }
                ]
            }
        )
    )
    memory = Memory(packed_db, _model(openai_server, tmp_path), Graph(packed_db), every=1)
    entries = memory.add_turn("u1", "s", "user", "三天前开始吃布洛芬，现在胃痛", now=T0)
    assert entries[0].source == "llm" and entries[0].time == "三天前"


def test_a_failing_model_leaves_the_rule_summary(
    packed_db: Database, openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    openai_server.queue(status(500), status(500), status(500))
    memory = Memory(packed_db, _model(openai_server, tmp_path), Graph(packed_db), every=1)
    entries = memory.add_turn("u1", "s", "user", "昨天开始头痛", now=T0)
    assert entries and entries[0].source == "rules"


def test_forget_erases_an_owner(packed_db: Database) -> None:
    memory = Memory(packed_db, graph=Graph(packed_db), every=1)
    memory.add_turn("u1", "s", "user", "我有哮喘", now=T0)
    assert memory.forget("u1") == 1 and memory.recall("u1", "哮喘") == []


# --- intent --------------------------------------------------------------------------------------
def test_rules_recognise_several_intents_in_one_message(packed_db: Database) -> None:
    result = recognise("我头疼两天了，布洛芬能和阿司匹林一起吃吗？挂什么科？", Graph(packed_db))
    names = {i.name for i in result.intents if i.confidence >= 0.5}
    assert {"symptom_consult", "drug_safety_check", "department_guidance"} <= names
    assert not result.clarify and result.path == "specialist"


def test_red_flag_symptoms_are_marked() -> None:
    assert recognise("我爸突然口角歪斜，说话不清").red_flag


def test_a_vague_message_gets_a_clarifying_question() -> None:
    result = recognise("那个怎么办")
    assert result.clarify and result.question


def test_unsure_rules_consult_the_model_and_invented_intents_are_ignored(
    packed_db: Database, openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    openai_server.queue(
        json_answer(
            {
                "intents": [
                    {"name": "medication_question", "confidence": 0.8},
                    {"name": "report_interpretation", "confidence": 0.7},
                    {"name": "buy_stocks", "confidence": 0.99},
                ],
                "clarify": False,
                "question": "",
            }
        )
    )
    # only the graph recognises 阿莫西林 (a drug): the rules are unsure, so the model is asked
    result = recognise("阿莫西林呢", Graph(packed_db), _model(openai_server, tmp_path))
    by_name = {i.name: i for i in result.intents}
    assert "buy_stocks" not in by_name and result.path == "fused"
    assert by_name["medication_question"].source == "both" and by_name["medication_question"].confidence > 0.8
    assert by_name["report_interpretation"].source == "llm"


def test_sure_rules_cost_no_model_call(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    result = recognise("这个化验单的指标偏高，挂什么科", None, _model(openai_server, tmp_path))
    assert openai_server.requests == [] and result.path == "specialist"
    assert {"report_interpretation", "department_guidance"} <= {i.name for i in result.intents}


def test_model_only_intents_cover_what_rules_miss(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    openai_server.queue(json_answer({"intents": [{"name": "care_process", "confidence": 0.75}]}))
    result = recognise("明天上午能来开药吗", None, _model(openai_server, tmp_path))
    assert result.intents[0].name == "care_process" and result.intents[0].source == "llm"


# --- reasoning -----------------------------------------------------------------------------------
def test_tree_of_thought_keeps_branches_that_explain_the_findings(packed_db: Database) -> None:
    tree = differential(["发热", "咳嗽", "咽痛"], Graph(packed_db))
    kept = [h for h in tree.hypotheses if h.kept]
    pruned = [h for h in tree.hypotheses if not h.kept]
    assert kept and tree.path == "specialist" and tree.fallback == "no_model"
    assert all(len(h.supporting) >= 2 for h in kept)  # at least half of the three findings
    assert all(h.pruned_because for h in pruned)
    assert kept[0].next_checks


def test_a_model_branch_survives_only_on_the_case_findings(
    packed_db: Database, openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    openai_server.queue(
        json_answer(
            {
                "hypotheses": [
                    {
                        "disease": "传染性单核细胞增多症",
                        "supporting": ["发热", "咽痛"],
                        "against": [],
                        "next_checks": ["血常规"],
                    },
                    {"disease": "疟疾", "supporting": ["寒战", "周期性发热"], "next_checks": ["血涂片"]},
                ]
            }
        )
    )
    tree = differential(["发热", "咳嗽", "咽痛"], Graph(packed_db), _model(openai_server, tmp_path))
    names = {h.disease: h for h in tree.hypotheses}
    assert tree.path == "fused"
    assert names["传染性单核细胞增多症"].source == "llm" and names["传染性单核细胞增多症"].supporting == [
        "发热",
        "咽痛",
    ]
    assert "疟疾" not in names  # its findings are not the case's: pruned before it was a branch


def test_differential_falls_back_when_the_model_breaks(
    packed_db: Database, openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    openai_server.queue(answer("不是JSON"), answer("还不是"), answer("仍然不是"))
    tree = differential(["发热", "咳嗽"], Graph(packed_db), _model(openai_server, tmp_path))
    assert tree.path == "specialist" and tree.fallback == "invalid_output" and tree.hypotheses
