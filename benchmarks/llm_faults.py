"""Fault injection: ``ask`` against the scripted server misbehaving at random, counting crashes and
checking that every answer is flagged as what happened.

Each run asks a treatment question about one of the starter pack's diseases (the intent rules are sure, so
the draft is the only model call) while the server is scripted with one scenario: a good draft, a
transient 500 then a good draft, persistent 500s, persistent 429s, a bad key, a garbage body, a dropped
connection, a hang past the deadline, malformed JSON (three times, exhausting the repair turns), a draft
citing evidence that does not exist, or a draft with a planted dose. Expected: good drafts end ``fused``;
every failure ends on the specialist path with the matching ``fallback`` reason; the planted dose is
removed and reported. A crash is any exception out of ``ask``.
"""

from __future__ import annotations

import json
import random
import re
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.fakes.openai_server import Behaviour, FakeOpenAI, answer, drop, garbage, hang, json_answer, status

from benchmarks.packed import packed_database
from medfusion.apps.ask.models import AskRequest
from medfusion.apps.ask.service import AskService
from medfusion.knowledge import packs
from medfusion.llm import GeneralModel
from medfusion.settings import Settings
from medfusion.store.access import Principal

DISEASES = packs.SHIPPED / "starter-diseases" / "diseases.jsonl"


def _quote(body: dict[str, Any]) -> Behaviour:
    found = re.findall(r"^\[([KGP]\d+)\] (.+?)（来源", body["messages"][-1]["content"], flags=re.M)
    sentences = [{"text": re.split(r"(?<=[。；])", t)[0], "citations": [i]} for i, t in found[:2]]
    return json_answer({"sentences": sentences or [{"text": "证据不足。", "citations": []}]})


def _quote_with_dose(body: dict[str, Any]) -> Behaviour:
    quoted = json.loads(_quote(body).text)
    cite = quoted["sentences"][0]["citations"]
    quoted["sentences"].append({"text": "每次口服750mg，每日4次。", "citations": cite})
    return json_answer(quoted)


SCENARIOS: dict[str, tuple[list[Behaviour | None], str]] = {
    # None = let the quoting responder answer; expected = "fused" or the fallback reason
    "good": ([None], "fused"),
    "planted_dose": ([None], "fused"),
    "transient_500": ([status(500), None], "fused"),
    "persistent_500": ([status(500)] * 3, "server_error"),
    "persistent_429": ([status(429, retry_after=0)] * 3, "rate_limited"),
    "bad_key": ([status(401)], "bad_key"),
    "garbage": ([garbage()], "bad_response"),
    "dropped": ([drop()] * 3, "unreachable"),
    "hang": ([hang(3)], "timeout"),
    "malformed_json": ([answer('{"sentences": [')] * 3, "invalid_output"),
    "bogus_citations": (
        [json_answer({"sentences": [{"text": "秋水仙碱20mg。", "citations": ["K99"]}]})],
        "guardrails_rejected",
    ),
}


def run(runs: int = 300, seed: int = 9) -> dict[str, Any]:
    rng = random.Random(seed)
    names = [json.loads(line)["name"] for line in DISEASES.read_text(encoding="utf-8").splitlines() if line]
    server = FakeOpenAI().start()
    outcomes: Counter[str] = Counter()
    wrong: list[dict[str, str]] = []
    crashes: list[str] = []
    latency: dict[str, list[float]] = {"fused": [], "specialist": []}
    try:
        with tempfile.TemporaryDirectory() as folder:
            db = packed_database(Path(folder) / "faults.db")
            general = GeneralModel.from_settings(
                Settings(
                    data_dir=Path(folder),
                    llm_base_url=server.base_url,
                    llm_model="fake",
                    llm_cache=False,
                    llm_timeout_seconds=1.0,
                    llm_breaker_failures=10_000,
                )
            )
            general.policy.sleep = lambda s: None
            service = AskService(db, Principal("bench", "doctor"), general)
            weights = {name: (3 if name == "good" else 1) for name in SCENARIOS}
            for _ in range(runs):
                scenario = rng.choices(list(weights), weights=list(weights.values()))[0]
                script, expected = SCENARIOS[scenario]
                server.reset()
                server.responder = _quote_with_dose if scenario == "planted_dose" else _quote
                server.queue(*[b for b in script if b is not None])
                question = f"{rng.choice(names)}怎么治疗？"
                started = time.perf_counter()
                try:
                    result = service.ask(AskRequest(question=question))
                except Exception as error:  # a crash is what this benchmark counts
                    crashes.append(f"{scenario}: {type(error).__name__}: {error}")
                    continue
                elapsed = (time.perf_counter() - started) * 1000
                got = "fused" if result.provenance.path == "fused" else result.provenance.fallback or "?"
                if result.provenance.path == "specialist" and not result.sentences:
                    got += " (no specialist answer)"
                outcomes[f"{scenario}→{got}"] += 1
                if scenario == "planted_dose":
                    removed = {f.code for f in result.guardrails if f.action.value == "removed"}
                    if "dose_beyond_knowledge" not in removed or "750" in result.answer:
                        got += " (planted dose not removed)"
                if got != expected:
                    wrong.append({"scenario": scenario, "expected": expected, "got": got})
                if scenario != "hang":
                    latency["fused" if got == "fused" else "specialist"].append(elapsed)
            db.dispose()
            general.close()
    finally:
        server.stop()
    return {
        "runs": runs,
        "crashes": len(crashes),
        "crash_examples": crashes[:5],
        "misflagged": len(wrong),
        "misflagged_examples": wrong[:10],
        "outcomes": dict(sorted(outcomes.items())),
        "ask_ms_p50_fused": round(statistics.median(latency["fused"]), 1) if latency["fused"] else None,
        "ask_ms_p50_specialist_fallback": round(statistics.median(latency["specialist"]), 1)
        if latency["specialist"]
        else None,
    }
