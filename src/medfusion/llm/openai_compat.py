"""The OpenAI-compatible chat protocol (``POST {base}/chat/completions``), which vLLM, Ollama, DeepSeek,
Qwen/DashScope compatible mode and most gateways speak: plain and streamed (server-sent events) answers,
tool calls, and JSON-schema ``response_format``.

This module only speaks the wire format and classifies failures; retries, the breaker, caching and
accounting live in :mod:`medfusion.llm.client` so they hold for any provider.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from medfusion.llm.messages import Completion, Delta, Message, Reason, ToolCall, ToolSpec, Usage

_RETRYABLE = {Reason.unreachable, Reason.timeout, Reason.rate_limited, Reason.server_error}
_WIDE = re.compile(r"[^\x00-\x7f]")


class ProviderError(Exception):
    def __init__(
        self, reason: Reason, detail: str = "", retry_after: float | None = None, partial_text: str = ""
    ) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after
        self.partial_text = partial_text

    @property
    def retryable(self) -> bool:
        return self.reason in _RETRYABLE


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[Message, ...]
    model: str
    temperature: float = 0.0
    max_tokens: int | None = None
    tools: tuple[ToolSpec, ...] = ()
    json_schema: dict[str, Any] | None = None  # {"name": …, "schema": …} for structured output

    def body(self, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [_wire_message(m) for m in self.messages],
            "temperature": self.temperature,
            "stream": stream,
        }
        if self.max_tokens:
            body["max_tokens"] = self.max_tokens
        if self.tools:
            body["tools"] = [{"type": "function", "function": t.model_dump()} for t in self.tools]
        if self.json_schema:
            body["response_format"] = {"type": "json_schema", "json_schema": self.json_schema}
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body


def _wire_message(message: Message) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        wire["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.tool_call_id:
        wire["tool_call_id"] = message.tool_call_id
    if message.name:
        wire["name"] = message.name
    return wire


def estimate_tokens(text: str) -> int:
    """Roughly one token per Chinese character or full-width mark and per ~4 ASCII characters (used only
    when the endpoint reports no usage)."""
    wide = len(_WIDE.findall(text))
    return wide + (len(text) - wide + 3) // 4


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _classify(response: httpx.Response) -> ProviderError:
    status = response.status_code
    try:
        text = response.read().decode("utf-8", "replace")[:200]
    except httpx.HTTPError:
        text = ""
    if status in (401, 403):
        return ProviderError(Reason.bad_key, f"HTTP {status}")
    if status == 429:
        return ProviderError(Reason.rate_limited, "HTTP 429", _retry_after(response))
    if status >= 500:
        return ProviderError(Reason.server_error, f"HTTP {status}", _retry_after(response))
    return ProviderError(Reason.bad_request, f"HTTP {status} {text}".strip())


class Provider(Protocol):
    """What the client needs of a model endpoint; failures raise :class:`ProviderError`."""

    base_url: str
    name: str

    def chat(self, request: ChatRequest, deadline: float) -> Completion: ...

    def stream(self, request: ChatRequest, deadline: float) -> Iterator[Delta | Completion]: ...

    def close(self) -> None: ...


class OpenAICompatible:
    """One endpoint. ``deadline`` (seconds from now) bounds connect, every read and the whole stream."""

    def __init__(
        self, base_url: str, api_key: str | None = None, connect_timeout: float = 5.0, name: str = "openai"
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._connect_timeout = connect_timeout
        self._http = httpx.Client(base_url=self.base_url, headers=headers, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def _timeout(self, deadline: float) -> httpx.Timeout:
        remaining = max(deadline - time.monotonic(), 0.001)
        return httpx.Timeout(remaining, connect=min(self._connect_timeout, remaining))

    def chat(self, request: ChatRequest, deadline: float) -> Completion:
        started = time.monotonic()
        try:
            response = self._http.post(
                "/chat/completions", json=request.body(stream=False), timeout=self._timeout(deadline)
            )
        except httpx.TimeoutException as error:
            raise ProviderError(Reason.timeout, type(error).__name__) from None
        except httpx.HTTPError as error:
            raise ProviderError(Reason.unreachable, type(error).__name__) from None
        if response.status_code != 200:
            raise _classify(response)
        try:
            payload = response.json()
            choice = payload["choices"][0]
            message = choice["message"]
            text = message.get("content") or ""
            calls = [
                ToolCall(
                    id=c.get("id") or f"call_{i}",
                    name=c["function"]["name"],
                    arguments=c["function"].get("arguments") or "{}",
                )
                for i, c in enumerate(message.get("tool_calls") or [])
            ]
            usage = _usage(payload.get("usage"), request, text)
            return Completion(
                text=text,
                tool_calls=calls,
                model=str(payload.get("model") or request.model),
                finish_reason=choice.get("finish_reason"),
                usage=usage,
                latency_ms=round((time.monotonic() - started) * 1000, 1),
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
            raise ProviderError(Reason.bad_response, f"unexpected payload ({type(error).__name__})") from None

    def stream(self, request: ChatRequest, deadline: float) -> Iterator[Delta | Completion]:
        """Deltas as they arrive, then the assembled :class:`Completion`; a failure mid-stream raises
        :class:`ProviderError` carrying the text received so far."""
        started = time.monotonic()
        parts: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        model, finish, usage_payload, done = request.model, None, None, False
        try:
            with self._http.stream(
                "POST", "/chat/completions", json=request.body(stream=True), timeout=self._timeout(deadline)
            ) as response:
                if response.status_code != 200:
                    raise _classify(response)
                for line in response.iter_lines():
                    if time.monotonic() > deadline:
                        raise ProviderError(Reason.timeout, "stream exceeded the deadline")
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        done = True
                        break
                    chunk = json.loads(data)
                    model = chunk.get("model") or model
                    usage_payload = chunk.get("usage") or usage_payload
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        finish = choice.get("finish_reason") or finish
                        for piece in delta.get("tool_calls") or []:
                            slot = calls.setdefault(
                                int(piece.get("index", 0)), {"id": "", "name": "", "args": ""}
                            )
                            slot["id"] = piece.get("id") or slot["id"]
                            function = piece.get("function") or {}
                            slot["name"] += function.get("name") or ""
                            slot["args"] += function.get("arguments") or ""
                        if delta.get("content"):
                            parts.append(delta["content"])
                            yield Delta(text=delta["content"])
                if not (done or finish):  # cut off: what arrived is not the whole answer
                    raise ProviderError(Reason.unreachable, "stream ended before the answer was complete")
        except ProviderError as error:
            error.partial_text = "".join(parts)
            raise
        except httpx.TimeoutException as error:
            raise ProviderError(Reason.timeout, type(error).__name__, partial_text="".join(parts)) from None
        except httpx.HTTPError as error:
            raise ProviderError(
                Reason.unreachable, type(error).__name__, partial_text="".join(parts)
            ) from None
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ProviderError(
                Reason.bad_response, f"bad stream chunk ({type(error).__name__})", partial_text="".join(parts)
            ) from None
        text = "".join(parts)
        yield Completion(
            text=text,
            tool_calls=[
                ToolCall(id=c["id"] or f"call_{i}", name=c["name"], arguments=c["args"] or "{}")
                for i, c in sorted(calls.items())
            ],
            model=str(model),
            finish_reason=finish,
            usage=_usage(usage_payload, request, text),
            latency_ms=round((time.monotonic() - started) * 1000, 1),
        )


def _usage(payload: Any, request: ChatRequest, text: str) -> Usage:
    if isinstance(payload, dict) and "prompt_tokens" in payload:
        return Usage(
            prompt_tokens=int(payload.get("prompt_tokens") or 0),
            completion_tokens=int(payload.get("completion_tokens") or 0),
        )
    prompt = sum(estimate_tokens(m.content) for m in request.messages)
    return Usage(prompt_tokens=prompt, completion_tokens=estimate_tokens(text), estimated=True)
