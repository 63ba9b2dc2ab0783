"""Intent recognition, rules first and the model for what rules cannot settle (医健助手 case: keyword
matching for simple intents, a semantic multi-label model for complex and fuzzy ones; multi-intent).

Rules: keywords from ``intents.toml`` and the knowledge graph's entity mentions (a symptom suggests a
symptom consultation, two drugs a safety check). The model (the ``intent`` prompt, validated) is asked
only when the rules are unsure — no intent at ``SURE`` confidence — so a plain question costs no model
call. Fusion: per intent the higher confidence, raised when both agree. A message that nothing
recognises with confidence ≥ 0.5, or whose two best intents are close and uncertain, gets ``clarify`` and
a question back — fuzzy cases are asked about, not guessed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field

from medfusion import packaged
from medfusion.graph import Graph
from medfusion.llm import GeneralModel, Unavailable, prompt
from medfusion.specialists import red_flags

RULE_CONFIDENCE = 0.85
GRAPH_CONFIDENCE = 0.6
CLEAR = 0.5
SURE = 0.7


@lru_cache(maxsize=1)
def intents() -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = packaged.toml("medfusion.agents", "intents.toml")["intent"]
    return table


class ScoredIntent(BaseModel):
    name: str
    confidence: float = Field(ge=0, le=1)
    source: str = "rules"  # rules | llm | both


class _ModelIntents(BaseModel):
    intents: list[ScoredIntent] = Field(default_factory=list, max_length=6)
    clarify: bool = False
    question: str = ""


class IntentResult(BaseModel):
    intents: list[ScoredIntent]
    clarify: bool
    question: str = ""
    red_flag: bool = False
    path: str = "specialist"  # specialist (rules) | fused (rules + model)

    def has(self, name: str) -> bool:
        return any(i.name == name and i.confidence >= CLEAR for i in self.intents)


def rule_intents(text: str, graph: Graph | None) -> dict[str, float]:
    found: dict[str, float] = {}
    for name, spec in intents().items():
        hits = sum(1 for k in spec["keywords"] if k in text)
        if hits:
            found[name] = min(RULE_CONFIDENCE + 0.05 * (hits - 1), 0.95)
    if graph is not None:
        types = [m.entity.type for m in graph.lexicon.mentions(text)]
        if "symptom" in types:
            found.setdefault("symptom_consult", GRAPH_CONFIDENCE)
        drugs = sum(t in {"drug", "drug_class"} for t in types)
        if drugs:
            found.setdefault("medication_question", GRAPH_CONFIDENCE)
        if drugs >= 2:
            found.setdefault("drug_safety_check", GRAPH_CONFIDENCE + 0.1)
        if "disease" in types and "symptom" not in types:
            found.setdefault("disease_knowledge", GRAPH_CONFIDENCE)
    return found


def recognise(
    text: str, graph: Graph | None = None, general: GeneralModel | None = None, memory: str = ""
) -> IntentResult:
    rules = rule_intents(text, graph)
    fused: dict[str, ScoredIntent] = {n: ScoredIntent(name=n, confidence=c) for n, c in rules.items()}
    clarify_hint, question, path = False, "", "specialist"
    unsure = not any(c >= SURE for c in rules.values())
    if unsure and general is not None and general.available:
        messages = prompt("intent").render(
            intents={n: s["meaning"] for n, s in intents().items()},
            rule_hits=sorted(rules),
            memory=memory,
            text=text,
        )
        result = general.structured(messages, _ModelIntents, model="fast", purpose="intent")
        if not isinstance(result, Unavailable):
            path = "fused"
            clarify_hint, question = result.value.clarify, result.value.question
            for item in result.value.intents:
                if item.name not in intents():
                    continue  # the model may not invent intents
                if item.name in fused:
                    both = min(max(fused[item.name].confidence, item.confidence) + 0.05, 1.0)
                    fused[item.name] = ScoredIntent(name=item.name, confidence=round(both, 3), source="both")
                else:
                    fused[item.name] = ScoredIntent(name=item.name, confidence=item.confidence, source="llm")
    ranked = sorted(fused.values(), key=lambda i: -i.confidence)
    clear = [i for i in ranked if i.confidence >= CLEAR]
    close = (
        len(ranked) >= 2 and ranked[0].confidence - ranked[1].confidence < 0.1 and ranked[0].confidence < 0.7
    )
    clarify = not clear or close or (clarify_hint and not any(i.source == "both" for i in ranked))
    if clarify and not question:
        options = "、".join(intents()[i.name]["label"] for i in ranked[:3]) or "症状咨询、用药咨询、挂号导诊"
        question = f"请问您想了解的是：{options}？可以再具体描述一下吗？"
    red_flag = bool(red_flags.detect(text))  # the one red-flag lexicon, negation-aware
    return IntentResult(intents=ranked, clarify=clarify, question=question, red_flag=red_flag, path=path)
