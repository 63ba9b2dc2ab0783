"""The agent runtime against the scripted OpenAI server: tool-calling loop, budgets, traces, the
deterministic specialist path, and falling back when the model fails mid-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medfusion.agents.evidence import EvidenceBook
from medfusion.agents.guardrails import Guardrails
from medfusion.agents.plans import clinical_plan
from medfusion.agents.runtime import Agent, AgentSpec, Budget
from medfusion.agents.tools import ToolContext, clinical_tools
from medfusion.graph import Graph
from medfusion.knowledge.base import KnowledgeBase
from medfusion.llm import GeneralModel
from medfusion.settings import Settings
from medfusion.store.database import Database
from tests.fakes.openai_server import Behaviour, FakeOpenAI, answer, general_model, status, tool_call

TASK = "华法林和阿司匹林能一起用吗？"


def _agent(db: Database, general: GeneralModel, budget: Budget | None = None) -> tuple[Agent, ToolContext]:
    graph = Graph(db)
    spec = AgentSpec(
        name="pharmacist",
        role="你是一名临床药师。",
        tools=["search_guidelines", "check_conflicts", "graph_neighbours"],
        budget=budget or Budget(),
    )
    agent = Agent(spec, clinical_tools(), general, clinical_plan, Guardrails(graph))
    return agent, ToolContext(kb=KnowledgeBase(db), graph=graph, book=EvidenceBook())


def _model(server: FakeOpenAI, tmp_path: Path, **kw: object) -> GeneralModel:
    return general_model(server, tmp_path / "v", **kw)


def _tool_results(body: dict[str, object]) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "tool"]  # type: ignore[index,union-attr]


def test_no_model_runs_the_deterministic_plan_over_the_same_tools(
    packed_db: Database, tmp_path: Path
) -> None:
    agent, ctx = _agent(packed_db, GeneralModel.from_settings(Settings(data_dir=tmp_path / "v")))
    run = agent.run(TASK, ctx)
    assert run.path == "specialist" and run.fallback == "no_model"
    assert any("华法林" in s.text and "阿司匹林" in s.text for s in run.sentences)
    assert all(
        s.citations and {c for c in s.citations} <= {e.id for e in run.evidence} for s in run.sentences
    )
    kinds = [(s.kind, s.name) for s in run.steps]
    assert ("plan", "deterministic plan") in kinds and ("tool", "check_conflicts") in kinds


def test_tool_calling_loop_cites_what_the_tools_found(
    packed_db: Database, openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    def respond(body: dict[str, object]) -> Behaviour:
        results = _tool_results(body)
        if not results:
            return tool_call("check_conflicts", {"drugs": ["华法林", "阿司匹林"]})
        first_id = results[0].split("]")[0].lstrip("[")
        return answer(f"华法林与阿司匹林合用会增加出血风险，需医生评估。[{first_id}]")

    openai_server.responder = respond
    agent, ctx = _agent(packed_db, _model(openai_server, tmp_path))
    run = agent.run(TASK, ctx)
    assert run.path == "fused" and run.stopped == "answered" and run.model == "fake-medical-7b"
    assert run.sentences[0].citations == ["G1"]
    assert [s.kind for s in run.steps] == ["llm", "tool", "llm", "guardrail"]
    assert run.tokens > 0
    sent_tools = {t["function"]["name"] for t in openai_server.requests[0]["tools"]}
    assert sent_tools == {"search_guidelines", "check_conflicts", "graph_neighbours"}


def test_bad_tool_arguments_go_back_to_the_model_which_recovers(
    packed_db: Database, openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    openai_server.queue(
        tool_call("search_guidelines", {"query": "", "k": 99}),
        tool_call("no_such_tool", {}),
        tool_call("search_guidelines", {"query": "华法林 阿司匹林 出血"}),
        answer("合用需警惕出血。"),
    )
    agent, ctx = _agent(packed_db, _model(openai_server, tmp_path))
    run = agent.run(TASK, ctx)
    outcomes = [s.outcome for s in run.steps if s.kind == "tool"]
    assert outcomes == ["bad_arguments", "unknown_tool", "ok"]
    assert "参数错误" in _tool_results(openai_server.requests[1])[0]
    assert run.stopped == "answered"


def test_step_budget_exhausted_falls_back_to_the_specialist_plan(
    packed_db: Database, openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    openai_server.responder = lambda body: tool_call("search_guidelines", {"query": "华法林"})
    agent, ctx = _agent(packed_db, _model(openai_server, tmp_path), Budget(max_steps=2))
    run = agent.run(TASK, ctx)
    assert run.path == "specialist" and run.fallback == "step_budget"
    assert len(openai_server.requests) == 2


def test_tool_budget_is_enforced(packed_db: Database, openai_server: FakeOpenAI, tmp_path: Path) -> None:
    openai_server.queue(
        tool_call("search_guidelines", {"query": "华法林"}),
        tool_call("search_guidelines", {"query": "阿司匹林"}),
        answer("合用需警惕出血。"),
    )
    agent, ctx = _agent(packed_db, _model(openai_server, tmp_path), Budget(max_tool_calls=1))
    agent.run(TASK, ctx)
    assert "budget exhausted" in _tool_results(openai_server.requests[2])[-1]


def test_model_failing_mid_run_falls_back_without_losing_the_evidence(
    packed_db: Database, openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    openai_server.queue(
        tool_call("check_conflicts", {"drugs": ["华法林", "阿司匹林"]}), status(500), status(500), status(500)
    )
    agent, ctx = _agent(packed_db, _model(openai_server, tmp_path))
    run = agent.run(TASK, ctx)
    assert run.path == "specialist" and run.fallback == "server_error"
    assert run.sentences and [s.outcome for s in run.steps if s.kind == "llm"] == ["ok", "server_error"]


def test_an_answer_that_fails_the_guardrails_falls_back(
    packed_db: Database, openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    openai_server.queue(answer("可以合用，阿司匹林每日300mg即可，无需监测。"))
    agent, ctx = _agent(packed_db, _model(openai_server, tmp_path))
    run = agent.run(TASK, ctx)
    assert run.path == "specialist" and run.fallback == "guardrails_rejected"
    assert any(f.code == "dose_beyond_knowledge" for f in run.findings)


def test_trace_steps_are_json_serialisable(packed_db: Database, tmp_path: Path) -> None:
    agent, ctx = _agent(packed_db, GeneralModel.from_settings(Settings(data_dir=tmp_path / "v")))
    run = agent.run(TASK, ctx)
    dumped = json.loads(run.model_dump_json())
    assert all({"kind", "name", "ms", "outcome"} <= set(step) for step in dumped["steps"])


def test_an_agent_cannot_name_a_tool_that_does_not_exist(packed_db: Database, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown tools"):
        Agent(
            AgentSpec(name="x", role="r", tools=["nope"]),
            clinical_tools(),
            GeneralModel.from_settings(Settings(data_dir=tmp_path / "v")),
            clinical_plan,
            Guardrails(None),
        )


def test_an_agent_with_memory_recalls_for_the_model_and_remembers(
    packed_db: Database, openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    from medfusion.agents.memory import Memory

    graph = Graph(packed_db)
    memory = Memory(packed_db, graph=graph, every=2)
    memory.add_turn("dr_li", "earlier", "user", "患者对阿司匹林过敏")
    memory.add_turn("dr_li", "earlier", "assistant", "已记录。")
    openai_server.queue(answer("合用需警惕出血。"))
    spec = AgentSpec(name="pharmacist", role="你是一名临床药师。", tools=["check_conflicts"])
    agent = Agent(
        spec, clinical_tools(), _model(openai_server, tmp_path), clinical_plan, Guardrails(graph), memory
    )
    ctx = ToolContext(kb=KnowledgeBase(packed_db), graph=graph, book=EvidenceBook())
    run = agent.run(TASK, ctx, owner="dr_li", session_id="now")
    assert "阿司匹林" in openai_server.requests[0]["messages"][-1]["content"].split("Memory")[-1]
    assert [s.name for s in run.steps if s.kind == "memory"] == ["recall", "remember"]
