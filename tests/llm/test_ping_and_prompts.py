"""``medfusion llm ping`` and ``llm models``; the prompt templates render and are versioned."""

from __future__ import annotations

import json

import jinja2
import pytest

from medfusion.llm import prompt
from medfusion.llm.prompts import available
from medfusion.settings import get_settings
from tests.cli.test_cli import run
from tests.fakes.openai_server import FakeOpenAI, hang, status


def test_ping_without_a_model_says_so_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["llm", "ping"], capsys)
    assert code == 3 and "no_model" in err and "MEDFUSION_LLM_BASE_URL" in err


def test_ping_reports_model_and_latency(llm_env: FakeOpenAI, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["llm", "ping"], capsys)
    assert code == 0 and out.startswith("ok default: fake-medical-7b answered in")
    code, out, _ = run(["llm", "ping", "--json"], capsys)
    assert code == 0 and json.loads(out)["model"] == "fake-medical-7b"
    assert llm_env.requests[-1]["max_tokens"] == 8 and llm_env.requests[-1]["stream"] is False


@pytest.mark.parametrize(("behaviour", "reason"), [(status(401), "bad_key"), (hang(5), "timeout")])
def test_ping_failures_are_one_line_reasons(
    llm_env: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    behaviour: object,
    reason: str,
) -> None:
    monkeypatch.setenv("MEDFUSION_LLM_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("MEDFUSION_LLM_MAX_RETRIES", "0")
    get_settings.cache_clear()
    llm_env.queue(behaviour)  # type: ignore[arg-type]
    code, _, err = run(["llm", "ping"], capsys)
    assert code == 3 and f"[{reason}]" in err and len(err.strip().splitlines()) == 1


def test_ping_unreachable(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MEDFUSION_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("MEDFUSION_LLM_MODEL", "m")
    monkeypatch.setenv("MEDFUSION_LLM_MAX_RETRIES", "0")
    get_settings.cache_clear()
    code, _, err = run(["llm", "ping"], capsys)
    assert code == 3 and "[unreachable]" in err


def test_models_lists_names_without_urls_or_keys(
    llm_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEDFUSION_LLM_API_KEY", "sk-secret")
    monkeypatch.setenv("MEDFUSION_LLM_MODELS", '{"large": {"model": "qwen-72b", "external": true}}')
    get_settings.cache_clear()
    code, out, _ = run(["llm", "models"], capsys)
    assert code == 0 and "default: fake-medical-7b" in out and "large: qwen-72b (external" in out
    assert "sk-secret" not in out and "127.0.0.1" not in out


def test_every_prompt_file_is_versioned_and_renders() -> None:
    names = available()
    assert {"cited_answer", "intent", "memory_summary", "differential", "agent"} <= set(names)
    for name in names:
        template = prompt(name)
        assert template.version.count(".") == 2 and template.ref == f"{name}@{template.version}"


def test_cited_answer_renders_role_examples_cot_and_output_format() -> None:
    template = prompt("cited_answer")
    evidence = [{"id": "K1", "text": "痛风急性期可用秋水仙碱。", "source": "指南"}]
    messages = template.render(
        reasoning="cot", question="痛风怎么治", evidence=evidence, draft=[], patient=""
    )
    assert (
        messages[0].role == "system"
        and "逐步" in messages[0].content
        and '"sentences"' in messages[0].content
    )
    assert [m.role for m in messages[1:]] == ["user", "assistant", "user"]  # one few-shot example
    assert "[K1] 痛风急性期可用秋水仙碱。" in messages[-1].content
    direct = template.render(reasoning="direct", question="q", evidence=evidence, draft=[], patient="")
    assert "逐步" not in direct[0].content


def test_a_missing_context_value_fails_loudly() -> None:
    with pytest.raises(jinja2.UndefinedError):
        prompt("cited_answer").render(question="q")
