"""The general-model client against the official ``openai`` Python SDK, same loopback server, same calls.

Both talk to the scripted OpenAI-compatible server (tests/fakes) on 127.0.0.1, so what is measured is the
client's own cost per call — request building, HTTP, parsing — plus, for ours, the breaker, the limiter,
accounting and the cache lookup (the cache is off for the comparison, then measured on its own). Plain and
streamed calls; for streams, time to the first delta and to the end.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fakes.openai_server import FakeOpenAI, answer

from medfusion.llm import Completion, Delta, GeneralModel, Message
from medfusion.settings import Settings

TEXT = "痛风急性发作期可选用秋水仙碱、非甾体抗炎药或糖皮质激素，需医生评估后使用。"


def _timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(len(ordered) * 0.95)], 3),
    }


def run(calls: int = 300) -> dict[str, Any]:
    import openai

    server = FakeOpenAI().start()
    server.default = answer(TEXT, chunks=8)
    messages = [Message(role="user", content="痛风急性发作怎么治疗？")]
    wire = [{"role": "user", "content": "痛风急性发作怎么治疗？"}]
    try:
        with tempfile.TemporaryDirectory() as folder:
            ours = GeneralModel.from_settings(
                Settings(
                    data_dir=Path(folder), llm_base_url=server.base_url, llm_model="fake", llm_cache=False
                )
            )
            peer = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=2)

            def ours_plain() -> None:
                assert isinstance(ours.chat(messages), Completion)

            def peer_plain() -> None:
                peer.chat.completions.create(model="fake", messages=wire, temperature=0)  # type: ignore[arg-type]

            def ours_stream() -> tuple[float, float]:
                started = time.perf_counter()
                first = 0.0
                for event in ours.stream(messages):
                    if isinstance(event, Delta) and not first:
                        first = time.perf_counter() - started
                return first * 1000, (time.perf_counter() - started) * 1000

            def peer_stream() -> tuple[float, float]:
                started = time.perf_counter()
                first = 0.0
                for chunk in peer.chat.completions.create(
                    model="fake",
                    messages=wire,
                    temperature=0,
                    stream=True,  # type: ignore[arg-type]
                ):
                    if chunk.choices and chunk.choices[0].delta.content and not first:
                        first = time.perf_counter() - started
                return first * 1000, (time.perf_counter() - started) * 1000

            for warm in (ours_plain, peer_plain):  # connection set-up is not what we compare
                _timed(warm, 10)
            result: dict[str, Any] = {"calls": calls, "peer": f"openai Python SDK {openai.__version__}"}
            result["plain_ours"] = _summary(_timed(ours_plain, calls))
            result["plain_peer"] = _summary(_timed(peer_plain, calls))
            ours_streams = [ours_stream() for _ in range(calls // 2)]
            peer_streams = [peer_stream() for _ in range(calls // 2)]
            result["stream_first_delta_ours"] = _summary([f for f, _ in ours_streams])
            result["stream_first_delta_peer"] = _summary([f for f, _ in peer_streams])
            result["stream_total_ours"] = _summary([t for _, t in ours_streams])
            result["stream_total_peer"] = _summary([t for _, t in peer_streams])
            cached = GeneralModel.from_settings(
                Settings(data_dir=Path(folder) / "c", llm_base_url=server.base_url, llm_model="fake")
            )
            cached.chat(messages)
            result["cache_hit_ours"] = _summary(_timed(lambda: cached.chat(messages), calls))
            ours.close()
            cached.close()
            peer.close()
    finally:
        server.stop()
    return result
