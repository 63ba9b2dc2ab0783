"""Grounding-check evaluation: constructed drafts over real evidence, with and without planted claims.

For each disease of the shipped starter pack, three questions (treatment; first-line treatment and targets;
symptoms and checks) go through the knowledge layer; the clean material is its cited sentences plus every
sentence of the passages it retrieved (each citing its passage), so treatment targets, doses and thresholds
are in the set. Two sentences citing different evidence are also merged into one sentence citing both.
Each clean sentence is checked as written and in four rewordings that keep every claim — a lead-in phrase,
units spelled in Chinese (mg → 毫克), a drug named by a graph synonym, full-width digits — and the
false-flag rate is the share of clean drafts with any finding. Each clean sentence then gets one plant at a
time: a changed number, an added number, an added dose, a dose in Chinese numerals (每次五百毫克), a drug
the graph knows, a real drug the graph does not know (caught by its INN stem), and a diagnosis — none of
them in the question or anywhere in the answer's evidence (a claim found only in evidence the sentence does
not cite is flagged ``miscited``, not removed, and is not a plant here). Recall is the share of plants
whose sentence is removed with a finding naming the planted words.
"""

from __future__ import annotations

import json
import random
import re
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from benchmarks.packed import packed_database
from medfusion.agents.guardrails import Guardrails
from medfusion.contract import AnswerSentence, Evidence
from medfusion.graph import Graph
from medfusion.knowledge import packs
from medfusion.knowledge.answers import Answerer
from medfusion.knowledge.base import KnowledgeBase

DISEASES = packs.SHIPPED / "starter-diseases" / "diseases.jsonl"
# real drugs checked at run time to be outside the graph's lexicon: only the INN-stem rule can catch them
UNKNOWN_DRUGS = [
    "替米沙坦",
    "奥美沙坦",
    "贝尼地平",
    "拉西地平",
    "培哚普利",
    "福辛普利",
    "比索洛尔",
    "匹伐他汀",
    "头孢克肟",
    "莫西沙星",
    "吉非替尼",
    "贝伐珠单抗",
    "格列美脲",
    "艾司唑仑",
    "泮托拉唑",
    "法莫替丁",
    "塞来昔布",
    "地塞米松",
    "依诺肝素",
    "利伐沙班",
    "替格瑞洛",
    "氯沙坦",
    "非洛地平",
    "雷贝拉唑",
]
PLANTS = (
    "number_changed",
    "number_added",
    "dose_added",
    "dose_in_words",
    "drug_known",
    "drug_unknown",
    "diagnosis",
)
_WORDS = ["两", "三", "五", "八", "十二", "二十", "五十", "一百", "二百五十", "五百"]
REWORDINGS = ("as_written", "lead_in", "chinese_units", "drug_synonym", "full_width")
_FULL = str.maketrans("0123456789", "０１２３４５６７８９")
_UNITS = (("mmHg", "毫米汞柱"), ("mg", "毫克"), ("mL", "毫升"))


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:\.\d+)?", text))


def _rewordings(sentence: str, graph: Graph) -> dict[str, str]:
    out = {"as_written": sentence, "lead_in": "根据所引资料，" + sentence}
    spelled = sentence
    for latin, chinese in _UNITS:
        spelled = re.sub(rf"(\d)\s*{latin}(?![A-Za-z/])", rf"\g<1>{chinese}", spelled)
    if spelled != sentence:
        out["chinese_units"] = spelled
    for m in graph.lexicon.mentions(sentence):
        if m.entity.type in {"drug", "drug_class"}:
            aliases = [
                a
                for a in graph.lexicon.synonyms(m.entity.name)
                if re.search(r"[\u4e00-\u9fff]", a) and a != m.surface
            ]
            if aliases:
                out["drug_synonym"] = sentence.replace(m.surface, aliases[0], 1)
                break
    if re.search(r"\d", sentence):
        out["full_width"] = sentence.translate(_FULL)
    return out


class _Planter:
    def __init__(self, graph: Graph, rng: random.Random) -> None:
        self.graph, self.rng = graph, rng
        lexicon = graph.lexicon.names()
        types = {name: {e.type for e in entities} for name, entities in lexicon.items()}
        self.drugs = sorted(
            n
            for n, t in types.items()
            if "drug" in t and len(n) >= 2 and re.fullmatch(r"[\u4e00-\u9fff]+", n)
        )
        self.diseases = sorted(
            n
            for n, t in types.items()
            if t == {"disease"} and 3 <= len(n) <= 10 and re.fullmatch(r"[\u4e00-\u9fff]+", n)
        )
        self.unknown = [d for d in UNKNOWN_DRUGS if not graph.lexicon.mentions(d)]

    def _absent(self, pool: list[str], context: str) -> str:
        known = {m.entity.id for m in self.graph.lexicon.mentions(context)}
        while True:
            pick = self.rng.choice(pool)
            if pick not in context and not ({m.entity.id for m in self.graph.lexicon.mentions(pick)} & known):
                return pick

    def plant(self, kind: str, sentence: str, context: str) -> tuple[str, str] | None:
        """(planted sentence, the planted words) or None when the sentence offers no place for it."""
        taken = _numbers(context)
        fresh = next(str(n) for n in self.rng.sample(range(11, 997), 50) if str(n) not in taken)
        body = sentence.rstrip("。；;")
        if kind == "number_changed":
            # a quantity, not the digit of a name (SGLT2, FEV1, 维生素B12)
            found = re.search(r"(?<![A-Za-z\d.])\d+(?:\.\d+)?", sentence)
            if not found:
                return None
            return sentence[: found.start()] + fresh + sentence[found.end() :], fresh
        if kind == "number_added":
            return f"{body}，疗程{fresh}天。", f"{fresh}天"
        if kind == "dose_added":
            return f"{body}，每次{fresh}mg。", f"{fresh}mg"
        if kind == "dose_in_words":
            spoken = {
                "两": "2",
                "三": "3",
                "五": "5",
                "八": "8",
                "十二": "12",
                "二十": "20",
                "五十": "50",
                "一百": "100",
                "二百五十": "250",
                "五百": "500",
            }
            options = [w for w in _WORDS if spoken[w] not in taken]
            if not options:
                return None
            word = self.rng.choice(options)
            return f"{body}，每次{word}毫克。", f"{spoken[word]}毫克"
        if kind == "drug_known":
            drug = self._absent(self.drugs, context)
            return f"{body}，可联用{drug}。", drug
        if kind == "drug_unknown":
            drug = self._absent(self.unknown, context)
            return f"{body}，可联用{drug}。", drug
        disease = self._absent(self.diseases, context)
        return f"{body}，需警惕合并{disease}。", disease


def run(diseases: int = 105, seed: int = 5) -> dict[str, Any]:
    rng = random.Random(seed)
    entries = [json.loads(line) for line in DISEASES.read_text(encoding="utf-8").splitlines() if line.strip()]
    entries = entries[:diseases]
    with tempfile.TemporaryDirectory() as folder:
        db = packed_database(Path(folder) / "grounding.db")
        graph = Graph(db)
        answerer = Answerer(KnowledgeBase(db), graph)
        rails = Guardrails(graph)
        planter = _Planter(graph, rng)
        clean_total: Counter[str] = Counter()
        clean_flagged: Counter[str] = Counter()
        flag_examples: list[dict[str, Any]] = []
        planted: Counter[str] = Counter()
        caught: Counter[str] = Counter()
        missed: dict[str, list[str]] = defaultdict(list)
        timings: list[float] = []
        for entry in entries:
            for question in (
                f"{entry['name']}怎么治疗？",
                f"{entry['name']}的一线治疗和治疗目标是什么？",
                f"{entry['name']}有哪些症状？需要做哪些检查？",
            ):
                answer = answerer.answer(question)
                evidence: list[Evidence] = answer.evidence
                texts = {e.id: e.text for e in evidence}
                everything = question + "\n" + "\n".join(texts.values())
                material = list(answer.sentences)
                for e in evidence:
                    if e.kind == "passage":
                        material += [
                            AnswerSentence(text=part, citations=[e.id])
                            for part in re.findall(r"[^。；\n]{6,}[。；]?", e.text)
                            if not part.lstrip().startswith("#")
                        ]
                if len(material) >= 2 and material[0].citations != material[-1].citations:
                    first, last = material[0], material[-1]
                    merged = first.text.rstrip("。；") + "；" + last.text
                    material.append(
                        AnswerSentence(text=merged, citations=[*first.citations, *last.citations])
                    )
                for s in material:
                    context = everything + "\n" + s.text
                    for name, text in _rewordings(s.text, graph).items():
                        started = time.perf_counter()
                        out = rails.after(
                            [AnswerSentence(text=text, citations=s.citations)], [question], evidence
                        )
                        timings.append(time.perf_counter() - started)
                        clean_total[name] += 1
                        if out.findings:
                            clean_flagged[name] += 1
                            if len(flag_examples) < 12:
                                flag_examples.append(
                                    {"text": text, "findings": [f.detail for f in out.findings]}
                                )
                    for kind in PLANTS:
                        made = planter.plant(kind, s.text, context)
                        if made is None:
                            continue
                        text, words = made
                        planted[kind] += 1
                        out = rails.after(
                            [AnswerSentence(text=text, citations=s.citations)], [question], evidence
                        )
                        removed = not out.sentences
                        named = any(words in f.detail or f.detail.endswith(words[-3:]) for f in out.findings)
                        if removed and named:
                            caught[kind] += 1
                        elif len(missed[kind]) < 5:
                            missed[kind].append(text)
        db.dispose()
    clean_n, flagged_n = sum(clean_total.values()), sum(clean_flagged.values())
    planted_n, caught_n = sum(planted.values()), sum(caught.values())
    return {
        "diseases": len(entries),
        "clean_drafts": clean_n,
        "clean_flagged": flagged_n,
        "false_flag_rate": round(flagged_n / max(clean_n, 1), 4),
        "false_flag_rate_by_rewording": {k: round(clean_flagged[k] / clean_total[k], 4) for k in clean_total},
        "planted": planted_n,
        "planted_caught": caught_n,
        "planted_recall": round(caught_n / max(planted_n, 1), 4),
        "recall_by_plant": {k: round(caught[k] / planted[k], 4) for k in planted},
        "plants_by_kind": dict(planted),
        "unknown_drugs_outside_graph": len(planter.unknown),
        "check_ms_p50": round(statistics.median(timings) * 1000, 3),
        "check_ms_p95": round(sorted(timings)[int(len(timings) * 0.95)] * 1000, 3),
        "flag_examples": flag_examples,
        "missed_examples": dict(missed),
    }
