"""A real HTTP server on loopback that speaks the OpenAI chat-completions protocol with scripted behaviour.

Tests (and the validation center) queue behaviours — a good answer, JSON, malformed JSON, a tool call, a
stream, a slow stream, 429/500/401, a hang, a garbage body, a dropped connection — or install a responder
function that decides per request. Every request body and its headers are kept for assertions (e.g. that
an ``external`` endpoint never received a patient's name).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from medfusion.llm import GeneralModel
from medfusion.settings import Settings


@dataclass
class Behaviour:
    kind: str  # answer | tool_call | status | hang | garbage | drop
    text: str = ""
    tool_name: str = ""
    tool_args: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    retry_after: float | None = None
    delay: float = 0.0  # hang: before answering; streams: between chunks
    chunks: int = 4  # streams: how many pieces the text is cut into
    fail_after_chunks: int | None = None  # streams: drop the connection after this many pieces
    usage: bool = True
    model: str = "fake-medical-7b"


def answer(text: str, **kw: Any) -> Behaviour:
    return Behaviour("answer", text=text, **kw)


def json_answer(value: Any, **kw: Any) -> Behaviour:
    return Behaviour("answer", text=json.dumps(value, ensure_ascii=False), **kw)


def tool_call(name: str, args: dict[str, Any], **kw: Any) -> Behaviour:
    return Behaviour("tool_call", tool_name=name, tool_args=args, **kw)


def status(code: int, retry_after: float | None = None) -> Behaviour:
    return Behaviour("status", status=code, retry_after=retry_after)


def hang(seconds: float) -> Behaviour:
    return Behaviour("hang", delay=seconds)


def garbage() -> Behaviour:
    return Behaviour("garbage")


def drop() -> Behaviour:
    return Behaviour("drop")


Responder = Callable[[dict[str, Any]], Behaviour]


class FakeOpenAI:
    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.script: deque[Behaviour] = deque()
        self.responder: Responder | None = None
        self.default = answer("好的。")
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def queue(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self.script.extend(behaviours)

    def reset(self) -> None:
        with self._lock:
            self.script.clear()
            self.requests.clear()
            self.headers.clear()
            self.responder = None

    def _next(self, body: dict[str, Any]) -> Behaviour:
        with self._lock:
            self.requests.append(body)
            if self.script:
                return self.script.popleft()
        return self.responder(body) if self.responder else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once: no delayed-ACK stalls

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

            def _send(
                self,
                code: int,
                payload: bytes,
                content_type: str = "application/json",
                extra: dict[str, str] | None = None,
            ) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in (extra or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (a hang it timed out on): nothing to tell it
                    self.close_connection = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                with fake._lock:
                    fake.headers.append(dict(self.headers))
                if fake.api_key and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._send(401, b'{"error": {"message": "invalid api key"}}')
                    return
                if not self.path.endswith("/chat/completions"):
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                body = json.loads(raw)
                behaviour = fake._next(body)
                self._act(body, behaviour)

            def _act(self, body: dict[str, Any], b: Behaviour) -> None:
                if b.kind == "hang":
                    time.sleep(b.delay)
                    self._send(200, _completion(body, answer("迟到的回答。")))
                    return
                if b.kind == "status":
                    extra = {"Retry-After": str(b.retry_after)} if b.retry_after is not None else None
                    self._send(
                        b.status,
                        json.dumps({"error": {"message": f"status {b.status}"}}).encode(),
                        extra=extra,
                    )
                    return
                if b.kind == "garbage":
                    self._send(200, b"<html>gateway says hi</html>", "text/html")
                    return
                if b.kind == "drop":
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                if b.delay and not body.get("stream"):
                    time.sleep(b.delay)
                if body.get("stream"):
                    self._stream(body, b)
                    return
                self._send(200, _completion(body, b))

            def _stream(self, body: dict[str, Any], b: Behaviour) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                for i, event in enumerate(_stream_events(body, b)):
                    if b.fail_after_chunks is not None and i >= b.fail_after_chunks:
                        self.connection.shutdown(2)
                        return
                    if b.delay and i:
                        time.sleep(b.delay)
                    try:
                        self.wfile.write(f"data: {event}\n\n".encode())
                        self.wfile.flush()
                    except OSError:
                        return
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        return Handler


def _usage(body: dict[str, Any], text: str) -> dict[str, int]:
    prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages", []))
    return {"prompt_tokens": prompt, "completion_tokens": len(text), "total_tokens": prompt + len(text)}


def _completion(body: dict[str, Any], b: Behaviour) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": b.text}
    finish = "stop"
    if b.kind == "tool_call":
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{len(body.get('messages', []))}",
                    "type": "function",
                    "function": {
                        "name": b.tool_name,
                        "arguments": json.dumps(b.tool_args, ensure_ascii=False),
                    },
                }
            ],
        }
        finish = "tool_calls"
    payload: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": b.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    if b.usage:
        payload["usage"] = _usage(body, b.text)
    return json.dumps(payload, ensure_ascii=False).encode()


def _stream_events(body: dict[str, Any], b: Behaviour) -> list[str]:
    events: list[dict[str, Any]] = []
    if b.kind == "tool_call":
        args = json.dumps(b.tool_args, ensure_ascii=False)
        half = len(args) // 2
        events.append(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "call_s",
                                    "function": {"name": b.tool_name, "arguments": args[:half]},
                                }
                            ]
                        },
                    }
                ]
            }
        )
        events.append(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"tool_calls": [{"index": 0, "function": {"arguments": args[half:]}}]},
                        "finish_reason": "tool_calls",
                    }
                ]
            }
        )
    else:
        size = max(1, -(-len(b.text) // max(b.chunks, 1)))
        pieces = [b.text[i : i + size] for i in range(0, len(b.text), size)] or [""]
        for piece in pieces:
            events.append({"choices": [{"index": 0, "delta": {"content": piece}}]})
        events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if b.usage:
        events.append({"choices": [], "usage": _usage(body, b.text)})
    return [json.dumps({"model": b.model, **e}, ensure_ascii=False) for e in events]


def general_model(server: FakeOpenAI | None, data_dir: Path, **overrides: object) -> GeneralModel:
    """MedFusion's general model pointed at the scripted server (no model when ``server`` is None): no
    response cache, a 3 s deadline, retries without waiting; ``overrides`` are further ``Settings`` fields."""
    if server is None:
        return GeneralModel.from_settings(Settings(data_dir=data_dir))
    values: dict[str, Any] = {"llm_model": "fake", "llm_cache": False, "llm_timeout_seconds": 3, **overrides}
    general = GeneralModel.from_settings(Settings(data_dir=data_dir, llm_base_url=server.base_url, **values))
    general.policy.sleep = lambda seconds: None
    return general
