"""The general-model client against a real loopback server speaking the OpenAI protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from medfusion.llm import Completion, Delta, GeneralModel, Message, Reason, ToolSpec, Unavailable
from medfusion.llm.resilience import BreakerState
from medfusion.settings import NamedModel, Settings
from tests.fakes.openai_server import (
    FakeOpenAI,
    answer,
    drop,
    garbage,
    general_model,
    hang,
    json_answer,
    status,
    tool_call,
)

ASK = [Message(role="user", content="高血压的一线用药？")]


def model_for(server: FakeOpenAI, tmp_path: Path, **overrides: object) -> GeneralModel:
    """The client as configured in production (cache on), pointed at the scripted server."""
    values: dict[str, object] = {"llm_model": "fake-medical-7b", "llm_cache": True, "llm_timeout_seconds": 2}
    return general_model(server, tmp_path / "var", **{**values, **overrides})


def test_no_model_configured_is_a_state_not_a_crash(tmp_path: Path) -> None:
    general = GeneralModel.from_settings(Settings(data_dir=tmp_path / "var"))
    assert not general.available
    reply = general.chat(ASK)
    assert isinstance(reply, Unavailable) and reply.reason is Reason.no_model
    events = list(general.stream(ASK))
    assert isinstance(events[-1], Unavailable) and events[-1].reason is Reason.no_model


def test_good_answer_carries_model_usage_cost_and_latency(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    general = model_for(openai_server, tmp_path, llm_price_input_per_1k=0.002, llm_price_output_per_1k=0.008)
    openai_server.queue(answer("钙通道阻滞剂等。"))
    reply = general.chat(ASK, purpose="test")
    assert isinstance(reply, Completion)
    assert reply.text == "钙通道阻滞剂等。" and reply.model == "fake-medical-7b"
    assert reply.usage.prompt_tokens == len("高血压的一线用药？") and reply.usage.completion_tokens == 8
    assert reply.usage.cost == pytest.approx(9 / 1000 * 0.002 + 8 / 1000 * 0.008, abs=1e-6)
    assert general.ledger.totals.calls == 1 and general.ledger.records[0].purpose == "test"
    assert openai_server.requests[0]["model"] == "fake-medical-7b"


def test_identical_deterministic_request_is_served_from_cache(
    openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    general = model_for(openai_server, tmp_path)
    openai_server.queue(answer("第一次"), answer("第二次"))
    first = general.chat(ASK)
    second = general.chat(ASK)
    assert isinstance(first, Completion) and isinstance(second, Completion)
    assert second.text == "第一次" and second.cached and len(openai_server.requests) == 1
    sampled = general.chat(ASK, temperature=0.7)  # sampling is never cached
    assert isinstance(sampled, Completion) and sampled.text == "第二次"


def test_missing_usage_is_estimated_and_marked(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    general = model_for(openai_server, tmp_path, llm_cache=False)
    openai_server.queue(answer("建议就医。", usage=False))
    reply = general.chat(ASK)
    assert isinstance(reply, Completion) and reply.usage.estimated and reply.usage.completion_tokens == 5


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        (status(401), Reason.bad_key),
        (status(400), Reason.bad_request),
        (garbage(), Reason.bad_response),
    ],
)
def test_non_retryable_failures_answer_at_once(
    openai_server: FakeOpenAI, tmp_path: Path, behaviour: object, reason: Reason
) -> None:
    general = model_for(openai_server, tmp_path)
    openai_server.queue(behaviour)  # type: ignore[arg-type]
    reply = general.chat(ASK)
    assert isinstance(reply, Unavailable) and reply.reason is reason and reply.attempts == 1


def test_429_and_500_are_retried_with_backoff_then_succeed(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    general = model_for(openai_server, tmp_path)
    waits: list[float] = []
    general.policy.sleep = waits.append
    openai_server.queue(status(429, retry_after=0.25), status(503), answer("好了"))
    reply = general.chat(ASK)
    assert isinstance(reply, Completion) and reply.text == "好了" and reply.attempts == 3
    assert waits[0] == 0.25  # Retry-After honoured
    assert len(openai_server.requests) == 3


def test_retries_are_bounded(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    general = model_for(openai_server, tmp_path, llm_max_retries=1)
    openai_server.queue(status(500), status(500), answer("不会到这里"))
    reply = general.chat(ASK)
    assert isinstance(reply, Unavailable) and reply.reason is Reason.server_error and reply.attempts == 2


def test_a_hanging_endpoint_times_out_within_the_deadline(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    general = model_for(openai_server, tmp_path, llm_timeout_seconds=0.5)
    openai_server.queue(hang(3))
    reply = general.chat(ASK)
    assert isinstance(reply, Unavailable) and reply.reason is Reason.timeout


def test_a_dropped_connection_is_unreachable(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    general = model_for(openai_server, tmp_path, llm_max_retries=0)
    openai_server.queue(drop())
    reply = general.chat(ASK)
    assert isinstance(reply, Unavailable) and reply.reason is Reason.unreachable


def test_nothing_listening_is_unreachable(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "v", llm_base_url="http://127.0.0.1:9/v1", llm_model="m", llm_max_retries=0
    )
    reply = GeneralModel.from_settings(settings).chat(ASK)
    assert isinstance(reply, Unavailable) and reply.reason is Reason.unreachable


def test_circuit_breaker_opens_after_consecutive_failures_and_recovers(
    openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    general = model_for(openai_server, tmp_path, llm_max_retries=0, llm_breaker_failures=2, llm_cache=False)
    endpoint = general.endpoints["default"]
    now = [0.0]
    endpoint.breaker.clock = lambda: now[0]
    openai_server.queue(status(500), status(500), answer("恢复"))
    assert isinstance(general.chat(ASK), Unavailable)
    assert isinstance(general.chat(ASK), Unavailable)
    assert endpoint.breaker.state is BreakerState.open
    blocked = general.chat(ASK)
    assert isinstance(blocked, Unavailable) and blocked.reason is Reason.circuit_open
    assert len(openai_server.requests) == 2  # the open breaker sent nothing
    now[0] = 31.0  # past the cool-down: one trial call goes out and closes it
    assert isinstance(general.chat(ASK), Completion)
    assert endpoint.breaker.state is BreakerState.closed


def test_tool_calls_are_parsed(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    general = model_for(openai_server, tmp_path)
    spec = ToolSpec(name="search_guidelines", description="检索", parameters={"type": "object"})
    openai_server.queue(tool_call("search_guidelines", {"query": "高血压 一线"}))
    reply = general.chat(ASK, tools=[spec])
    assert isinstance(reply, Completion) and reply.finish_reason == "tool_calls"
    assert reply.tool_calls[0].name == "search_guidelines"
    assert json.loads(reply.tool_calls[0].arguments) == {"query": "高血压 一线"}
    assert openai_server.requests[0]["tools"][0]["function"]["name"] == "search_guidelines"


def test_stream_delivers_deltas_then_the_whole_completion(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    general = model_for(openai_server, tmp_path)
    openai_server.queue(answer("一线用药包括钙通道阻滞剂。", chunks=5))
    events = list(general.stream(ASK))
    deltas = [e.text for e in events if isinstance(e, Delta)]
    final = events[-1]
    assert len(deltas) == 5 and isinstance(final, Completion)
    assert "".join(deltas) == final.text == "一线用药包括钙通道阻滞剂。"
    assert final.usage.completion_tokens == len(final.text) and not final.usage.estimated


def test_streamed_tool_call_is_assembled(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    general = model_for(openai_server, tmp_path)
    openai_server.queue(tool_call("check_conflicts", {"drugs": ["华法林", "阿司匹林"]}))
    final = list(general.stream(ASK))[-1]
    assert isinstance(final, Completion)
    assert json.loads(final.tool_calls[0].arguments) == {"drugs": ["华法林", "阿司匹林"]}


def test_a_slow_stream_past_the_deadline_ends_flagged_with_its_partial_text(
    openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    general = model_for(openai_server, tmp_path, llm_timeout_seconds=0.6)
    openai_server.queue(answer("甲乙丙丁戊己庚辛", chunks=8, delay=0.25))
    events = list(general.stream(ASK))
    final = events[-1]
    assert isinstance(final, Unavailable) and final.reason is Reason.timeout
    assert final.partial_text and "甲乙丙丁戊己庚辛".startswith(final.partial_text)
    assert len(openai_server.requests) == 1  # text was already shown: never retried


def test_a_stream_cut_mid_way_ends_flagged(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    general = model_for(openai_server, tmp_path)
    openai_server.queue(answer("甲乙丙丁", chunks=4, fail_after_chunks=2))
    final = list(general.stream(ASK))[-1]
    assert isinstance(final, Unavailable) and final.partial_text == "甲乙"


def test_a_stream_failing_before_any_text_is_retried(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    general = model_for(openai_server, tmp_path)
    openai_server.queue(status(503), answer("好"))
    final = list(general.stream(ASK))[-1]
    assert isinstance(final, Completion) and final.attempts == 2


class Triage(BaseModel):
    department: str
    urgency: int


def test_structured_output_is_validated(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    general = model_for(openai_server, tmp_path)
    openai_server.queue(answer('```json\n{"department": "心内科", "urgency": 2}\n```'))
    result = general.structured(ASK, Triage)
    assert not isinstance(result, Unavailable)
    assert result.value == Triage(department="心内科", urgency=2) and result.repairs == 0
    sent = openai_server.requests[0]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Triage"


def test_malformed_json_gets_a_bounded_repair_turn(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    general = model_for(openai_server, tmp_path)
    openai_server.queue(
        answer('{"department": "心内科", "urgency": "很急"'),
        json_answer({"department": "心内科", "urgency": 1}),
    )
    result = general.structured(ASK, Triage)
    assert not isinstance(result, Unavailable) and result.repairs == 1
    repair_turn = openai_server.requests[1]["messages"][-1]["content"]
    assert "schema" in repair_turn


def test_structured_output_gives_up_after_the_repairs(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    general = model_for(openai_server, tmp_path)
    openai_server.queue(answer("不是JSON"), answer("还不是"), answer("{}"))
    result = general.structured(ASK, Triage, repairs=2)
    assert isinstance(result, Unavailable) and result.reason is Reason.invalid_output
    assert len(openai_server.requests) == 3


def test_endpoint_without_json_schema_support_is_asked_in_the_prompt(
    openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    general = model_for(openai_server, tmp_path)
    openai_server.queue(status(400), json_answer({"department": "急诊科", "urgency": 1}))
    result = general.structured(ASK, Triage)
    assert not isinstance(result, Unavailable) and result.value.department == "急诊科"
    assert "response_format" not in openai_server.requests[1]


def test_named_models_and_fallback_to_default(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    general = model_for(openai_server, tmp_path, llm_models={"large": NamedModel(model="fake-70b")})
    assert general.describe() == {"default": "fake-medical-7b", "large": "fake-70b"}
    openai_server.queue(answer("a"), answer("b"))
    general.chat(ASK, model="large")
    general.chat(ASK, model="fast")  # not configured: the default answers
    assert [r["model"] for r in openai_server.requests] == ["fake-70b", "fake-medical-7b"]


def test_api_key_is_sent_as_bearer(tmp_path: Path) -> None:
    server = FakeOpenAI(api_key="sk-test").start()
    try:
        good = model_for(server, tmp_path, llm_api_key="sk-test")
        assert isinstance(good.chat(ASK), Completion)
        bad = model_for(server, tmp_path / "b", llm_api_key="sk-wrong")
        reply = bad.chat(ASK)
        assert isinstance(reply, Unavailable) and reply.reason is Reason.bad_key
    finally:
        server.stop()


def test_external_endpoint_never_sees_identifiers_and_the_answer_is_mapped_back(
    openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    general = model_for(openai_server, tmp_path, llm_external=True)
    text = "患者张建国，男，身份证号110101195003071234，电话13912345678，主诉胸痛。"
    openai_server.responder = lambda body: answer(
        "已记录：" + body["messages"][-1]["content"].split("，")[0].removeprefix("患者")
    )
    reply = general.chat([Message(role="user", content=text)])
    sent = json.dumps(openai_server.requests[0], ensure_ascii=False)
    for identifier in ("张建国", "110101195003071234", "13912345678"):
        assert identifier not in sent
    assert "胸痛" in sent  # clinical content still goes out
    assert isinstance(reply, Completion) and reply.deidentified and reply.text == "已记录：张建国"
