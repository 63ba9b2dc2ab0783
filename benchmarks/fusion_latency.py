"""Fusion pipeline refactor: ``ask``, ``consult`` and ``MDT`` latency before and after, same inputs, one run.

- **Before**: commit ``d10bf74`` (the last commit before the services moved onto one ``FusionPipeline``),
  its ``src/`` tree materialised from git into a temporary folder. **After**: a copy of the working tree's
  ``src/`` taken when the benchmark starts (so edits made meanwhile do not change it mid-run). Both share
  the installed dependencies of the virtualenv.
- Each version runs in its own long-lived child process (``PYTHONPATH=<tree>/src``, ``python -P -s``; the
  child checks that ``medfusion.__file__`` is in its tree and not the editable install), building its own
  packed SQLite database with its own code, and its services once (the API keeps them warm).
- Inputs: 10 ``ask`` questions, 6 ``consult`` cases at the attending level, and the shipped MDT example
  bundle (read once here and sent to both children) with 3 questions / proposed drug lists. No model is
  configured, so every call takes the specialist path (retrieval, graph, guardrails, the run record).
- Every input is run once on each version to warm up, then ``rounds`` rounds; within a round each input
  is called on the two versions back to back, the order alternating ABBA from one pair to the next, so
  machine drift (other work on this 2-core machine) falls on both alike.
- Per service: median and p90 ms before and after; after/before of the medians; the geometric mean over
  inputs of each input's own after/before median ratio, and of its fastest call's (the least disturbed
  by other work); the median and quartiles of after/before over the back-to-back pairs; and a noise
  floor, the per-input median statistic between the before version's odd and even rounds (an A/A
  comparison). The answers are compared too: equal, and equal once evidence ids ([K1], [G3] …, numbered
  in the order a run gathers its evidence) and line order are set aside. ``cpu``: the same figures of
  the child's CPU time per call (all threads), which other work on the machine disturbs far less.
- ``fused``: the same, with a model — the scripted OpenAI server (tests/fakes/openai_server.py) quoting
  the evidence it is shown (ask, consult) or calling one tool and then answering (MDT's specialty agents);
  kept only for services where both versions end every call ``fused``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import IO, Any

BASELINE = "d10bf74"
REPO = Path(__file__).resolve().parents[1]
EXAMPLE_BUNDLE = REPO / "src" / "medfusion" / "apps" / "mdt" / "examples" / "af_diabetes_ckd.json"

ASK = [
    "痛风急性发作怎么治疗？",
    "高血压患者能吃布洛芬吗？",
    "2型糖尿病的一线用药是什么？",
    "社区获得性肺炎有哪些症状？",
    "房颤患者如何抗凝？",
    "慢性肾脏病需要做哪些检查？",
    "哮喘急性发作怎么处理？",
    "二甲双胍有哪些禁忌症？",
    "冠心病的二级预防用什么药？",
    "甲状腺功能亢进怎么治疗？",
]
CONSULT = [
    "3岁男孩，发热2天，咳嗽，气促，无皮疹，无腹泻",
    "58岁男性，胸痛2小时，伴大汗、气促",
    "65岁女性，多饮多尿3个月，体重下降5公斤",
    "45岁男性，夜间突发右足第一跖趾关节红肿热痛",
    "30岁女性，头痛伴恶心呕吐1天，畏光",
    "70岁男性，反复咳嗽咳痰10年，近3天气促加重，双下肢水肿",
]
MDT = [
    ("抗凝方案与镇痛用药安全", ["布洛芬"]),
    ("房颤合并糖尿病和慢性肾病，抗凝方案如何选择？", ["利伐沙班"]),
    ("血糖控制方案调整", ["恩格列净", "阿司匹林"]),
]

# where ask's request, ask's service and the principal live in each version
MODULES = {
    "before": ("medfusion.agents.ask", "medfusion.agents.ask", "medfusion.store.patient_service"),
    "after": ("medfusion.apps.ask.models", "medfusion.apps.ask.service", "medfusion.store.access"),
}

# ---------------------------------------------------------------------------------------------------------
# The child: imports medfusion from the tree on PYTHONPATH only; stdlib imports above, medfusion's below.


def _services(
    api: str, data_dir: Path, llm_base_url: str | None
) -> tuple[Any, dict[str, Callable[..., Any]]]:
    """Build one version's database and services; return (db, {service: call(input) -> result})."""
    from medfusion.knowledge import packs
    from medfusion.llm import GeneralModel
    from medfusion.settings import Settings
    from medfusion.store.database import Database

    ask_models, ask_service, access = MODULES[api]
    AskRequest = import_module(ask_models).AskRequest
    AskService = import_module(ask_service).AskService
    Principal = import_module(access).Principal
    from medfusion.apps.consult.models import ConsultRequest
    from medfusion.apps.consult.service import ConsultService
    from medfusion.apps.mdt.models import MdtRequest
    from medfusion.apps.mdt.service import MdtService

    db = Database(f"sqlite:///{data_dir / 'bench.db'}")
    db.upgrade()
    for pack in packs.shipped():
        packs.install(db, pack)
    llm: dict[str, Any] = (
        {"llm_base_url": llm_base_url, "llm_model": "fake", "llm_cache": False} if llm_base_url else {}
    )
    general = GeneralModel.from_settings(Settings(data_dir=data_dir / "model", **llm))
    principal = Principal("bench", "doctor")
    ask = AskService(db, principal, general)
    consult = ConsultService(db, principal, general)
    mdt = MdtService(db, principal, general)
    return db, {
        "ask": lambda q: ask.ask(AskRequest(question=q)),
        "consult": lambda c: consult.consult(ConsultRequest(case=c, level="attending")),
        "mdt": lambda m: mdt.run(
            MdtRequest(bundle=m["bundle"], question=m["question"], proposed_drugs=m["drugs"])
        ),
    }


def _child() -> None:
    protocol: IO[str] = sys.stdout
    sys.stdout = sys.stderr  # nothing but the protocol's lines on the real stdout
    config = json.loads(sys.stdin.readline())
    tree = Path(config["tree"]).resolve()
    import medfusion

    where = Path(medfusion.__file__).resolve()
    if not where.is_relative_to(tree):
        raise SystemExit(f"medfusion imported from {where}, not from {tree}")
    started = time.perf_counter()
    _, calls = _services(config["api"], Path(config["data_dir"]), config.get("llm_base_url"))
    setup_s = time.perf_counter() - started
    inputs: dict[str, list[Any]] = config["inputs"]
    print(json.dumps({"medfusion": str(where), "setup_s": setup_s}), file=protocol, flush=True)
    for line in sys.stdin:  # "<service> <index>" → one timed call; "quit"
        if line.strip() == "quit":
            break
        service, index = line.split()
        t0, c0 = time.perf_counter(), time.process_time()
        result = calls[service](inputs[service][int(index)])
        ms, cpu_ms = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
        answer = str(result.answer)
        reply = {
            "ms": ms,
            "cpu_ms": cpu_ms,
            "path": result.provenance.path,
            "answer": _digest(answer),
            "text": _digest("\n".join(sorted(_CITE.sub("", answer).splitlines()))),
        }
        print(json.dumps(reply), file=protocol, flush=True)


_CITE = re.compile(r"\[?\b[KGP]\d+\b\]?")  # evidence ids: numbered in the order a run gathers its evidence


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------
# The parent.

Call = dict[str, Any]  # one timed call: ms, path, the answer's digest, its sorted lines without evidence ids


class _Child:
    def __init__(self, api: str, tree: Path, inputs: dict[str, list[Any]], llm_base_url: str | None) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"fusion-{api}-"))
        env = {**os.environ, "PYTHONPATH": str(tree / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
        # -P: not benchmarks/ first on sys.path; -s: no user site. The editable install's .pth appends the
        # working tree's src/ after site-packages, so PYTHONPATH (before site-packages) wins; checked.
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-s", str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            encoding="utf-8",
        )
        config = {
            "api": api,
            "tree": str(tree / "src"),
            "data_dir": str(self.data_dir),
            "inputs": inputs,
            "llm_base_url": llm_base_url,
        }
        self.hello: dict[str, Any] = self._send(json.dumps(config))

    def _send(self, line: str) -> Any:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        if not reply:
            raise RuntimeError(f"the benchmark's child exited with {self.process.wait()}")
        return json.loads(reply)

    def call(self, service: str, index: int) -> Call:
        reply: Call = self._send(f"{service} {index}")
        return reply

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait(timeout=60)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _trees(folder: Path) -> dict[str, Path]:
    before, after = folder / "before", folder / "after"
    before.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", BASELINE, "src"], check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
    shutil.copytree(REPO / "src", after / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return {"before": before, "after": after}


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def _paired(a: list[list[float]], b: list[list[float]]) -> float:
    """Geometric mean over inputs of median(b) / median(a)."""
    logs = [math.log(statistics.median(y) / statistics.median(x)) for x, y in zip(a, b, strict=True)]
    return math.exp(statistics.fmean(logs))


def _figures(ms: dict[str, list[list[float]]]) -> dict[str, Any]:
    """``ms[version][input]``: that input's times, one per round."""
    flat = {v: [x for per_input in m for x in per_input] for v, m in ms.items()}
    out: dict[str, Any] = {}
    for v in ("before", "after"):
        out[f"{v}_ms_p50"] = round(statistics.median(flat[v]), 1)
        out[f"{v}_ms_p90"] = round(_p90(flat[v]), 1)
    out["ratio_p50_after_over_before"] = round(out["after_ms_p50"] / out["before_ms_p50"], 3)
    out["ratio_paired_geomean"] = round(_paired(ms["before"], ms["after"]), 3)
    # the fastest of an input's calls: the least disturbed by other work on the machine
    logs = [math.log(min(y) / min(x)) for x, y in zip(ms["before"], ms["after"], strict=True)]
    out["ratio_min_geomean"] = round(math.exp(statistics.fmean(logs)), 3)
    # each call pair ran back to back: after/before per pair, its median and quartiles
    pairs = [a / b for x, y in zip(ms["before"], ms["after"], strict=True) for b, a in zip(x, y, strict=True)]
    quartiles = statistics.quantiles(pairs, n=4, method="inclusive")
    out["ratio_back_to_back_pairs_p50"] = round(statistics.median(pairs), 3)
    out["ratio_back_to_back_pairs_p25_p75"] = [round(quartiles[0], 3), round(quartiles[2], 3)]
    # A/A: the before version's odd rounds against its even rounds, the same statistic
    out["noise_before_aa_paired_geomean"] = round(
        _paired([m[0::2] for m in ms["before"]], [m[1::2] for m in ms["before"]]), 3
    )
    return out


def _summary(calls: dict[str, list[list[Call]]]) -> dict[str, Any]:
    """``calls[version][input]``: that input's timed calls, one per round. Wall-clock figures, then the
    same of the child's CPU time (all its threads), which other work on the machine disturbs far less."""

    def times(key: str) -> dict[str, list[list[float]]]:
        return {v: [[c[key] for c in per_input] for per_input in inputs] for v, inputs in calls.items()}

    out: dict[str, Any] = {
        "inputs": len(calls["before"]),
        "calls_per_version": sum(map(len, calls["before"])),
        **_figures(times("ms")),
        "cpu": _figures(times("cpu_ms")),
    }
    out["paths"] = {
        v: sorted({c["path"] for per_input in inputs for c in per_input}) for v, inputs in calls.items()
    }
    last = {v: [per_input[-1] for per_input in inputs] for v, inputs in calls.items()}
    same = list(zip(last["before"], last["after"], strict=True))
    out["same_answer"] = sum(b["answer"] == a["answer"] for b, a in same)
    out["same_answer_lines_ignoring_evidence_ids_and_order"] = sum(b["text"] == a["text"] for b, a in same)
    return out


def _leg(
    trees: dict[str, Path], inputs: dict[str, list[Any]], rounds: int, llm_base_url: str | None
) -> dict[str, Any]:
    """Warm-up (every input once, not counted), then ``rounds`` rounds; within a round each input is called
    on both versions back to back, the order alternating ABBA from one call pair to the next."""
    children = {v: _Child(v, tree, inputs, llm_base_url) for v, tree in trees.items()}
    calls: dict[str, dict[str, list[list[Call]]]] = {
        s: {v: [[] for _ in items] for v in children} for s, items in inputs.items()
    }
    warm: dict[str, dict[str, float]] = {v: {} for v in children}
    pair = 0
    try:
        for r in range(rounds + 1):
            for service, items in inputs.items():
                for i in range(len(items)):
                    order = ["before", "after"] if pair % 4 in (0, 3) else ["after", "before"]
                    pair += 1
                    for v in order:
                        call = children[v].call(service, i)
                        if r:
                            calls[service][v][i].append(call)
                        elif i == 0:
                            warm[v][service] = round(call["ms"], 1)
    finally:
        for c in children.values():
            c.close()
    out: dict[str, Any] = {
        "rounds": rounds,
        "imported_from": {
            v: c.hello["medfusion"].replace(str(trees[v]), f"<{v}>") for v, c in children.items()
        },
        "setup_s": {v: round(c.hello["setup_s"], 2) for v, c in children.items()},
        "first_call_ms": warm,
    }
    for service in inputs:
        out[service] = _summary(calls[service])
    return out


def _responder(body: dict[str, Any]) -> Any:
    """A well-behaved model: an agent (tools offered) calls one search, then answers citing its first
    passage; a drafting prompt gets back the first sentence of the first two evidence items, cited."""
    from tests.fakes.openai_server import answer, json_answer, tool_call

    if body.get("tools"):
        tools = [m for m in body["messages"] if m.get("role") == "tool"]
        if not tools:
            return tool_call("search_guidelines", {"query": body["messages"][-1]["content"][:60]})
        first = re.search(r"\[(K\d+)\] ([^。；\n]+)", tools[-1]["content"])
        return answer(f"{first.group(2)}。[{first.group(1)}]" if first else "证据不足，建议线下讨论。")
    found = re.findall(r"^\[([KGP]\d+)\] (.+?)（来源", body["messages"][-1]["content"], flags=re.M)
    sentences = [{"text": re.split(r"(?<=[。；])", t)[0], "citations": [i]} for i, t in found[:2]]
    return json_answer(
        {"reasoning": "先看证据。", "sentences": sentences or [{"text": "证据不足。", "citations": []}]}
    )


def run(rounds: int = 5, fused_rounds: int = 3) -> dict[str, Any]:
    bundle = json.loads(EXAMPLE_BUNDLE.read_text(encoding="utf-8"))
    inputs: dict[str, list[Any]] = {
        "ask": ASK,
        "consult": CONSULT,
        "mdt": [{"bundle": bundle, "question": q, "drugs": d} for q, d in MDT],
    }
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        trees = _trees(Path(folder))
        out: dict[str, Any] = {
            "before": BASELINE,
            "after": f"working tree on {head} (src/ copied at start)",
            "specialist": _leg(trees, inputs, rounds, None),
        }
        if fused_rounds:
            from tests.fakes.openai_server import FakeOpenAI

            server = FakeOpenAI().start()
            server.responder = _responder
            try:
                fused = _leg(trees, inputs, fused_rounds, server.base_url)
            finally:
                server.stop()
            # kept only where both versions ended every call fused
            fused["skipped"] = {
                s: fused.pop(s)["paths"]
                for s in list(inputs)
                if fused[s]["paths"] != {"before": ["fused"], "after": ["fused"]}
            }
            out["fused"] = fused
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def bench_fusion_latency() -> dict[str, Any]:
    return run(
        int(os.environ.get("MEDFUSION_BENCH_FUSION_ROUNDS", "5")),
        int(os.environ.get("MEDFUSION_BENCH_FUSION_FUSED_ROUNDS", "3")),
    )


if __name__ == "__main__":  # the child
    _child()
