"""``ask`` — the platform's one question entry (CLI ``medfusion ask``, API ``POST /api/ask``).

The knowledge layer answers first (hybrid retrieval + graph facts + conflict check against the patient's
chart): that is the specialist answer and the evidence. With a general model configured, the model drafts
from that evidence (``cited_answer`` prompt, direct or chain of thought), and the guardrails check the
draft — grounding, safety wording, PII — before anything is shown; what does not survive is removed and
reported, and if nothing survives the specialist answer stands. ``tot`` adds a tree-of-thought
differential when the question describes symptoms. The output follows the one contract (evidence,
confidence and its method, provenance with ``path``, status, warnings), and every run is stored with its
trace and audited.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from pydantic import BaseModel, Field

from medfusion.agents.drafting import ModelSentence, guard
from medfusion.agents.fusion import FusionService
from medfusion.agents.guardrails import Finding
from medfusion.agents.intent import IntentResult, recognise
from medfusion.agents.memory import Memory, MemoryEntry
from medfusion.agents.reasoning import Differential, Strategy, differential
from medfusion.agents.runs import RunRecord, store_run
from medfusion.agents.trace import Trace
from medfusion.contract import Confidence, OutputWarning, Path, Provenance, Status
from medfusion.errors import InvalidInput
from medfusion.knowledge.answers import SPECIALIST, Answerer, AnswerSentence, Evidence
from medfusion.llm import GeneralModel, Unavailable, prompt

LOW_CONFIDENCE = 0.35
_SEVERE = re.compile(r"^【(contraindicated|major|severe|high)】")
_ANY_CONFLICT = re.compile(r"^【(\w+)】")


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    patient_id: str | None = Field(default=None, max_length=64)
    reasoning: Strategy = "direct"
    session_id: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    k: int = Field(default=5, ge=1, le=20)


class _Draft(BaseModel):
    reasoning: str = ""
    sentences: list[ModelSentence] = Field(min_length=1, max_length=12)


@dataclass
class _Outcome:
    """What the answer is so far: the specialist's, until a guarded model draft replaces it."""

    sentences: list[AnswerSentence]
    findings: list[Finding]
    confidence: Confidence
    fallback: str | None
    path: Path = "specialist"
    model: str | None = None
    prompt: str | None = None
    chain: str | None = None


class AskResult(BaseModel):
    run_id: str
    question: str
    answer: str
    sentences: list[AnswerSentence]
    evidence: list[Evidence]
    confidence: Confidence
    provenance: Provenance
    status: Status
    warnings: list[OutputWarning]
    intents: IntentResult
    differential: Differential | None = None
    guardrails: list[Finding] = Field(default_factory=list)
    memory: list[MemoryEntry] = Field(default_factory=list)
    reasoning: str | None = None  # the model's chain of thought, for the reviewing clinician
    trace: list[dict[str, object]] = Field(default_factory=list)


def _render(sentences: list[AnswerSentence]) -> str:
    return "".join(f"{s.text}[{','.join(s.citations)}]" if s.citations else s.text for s in sentences)


class AskService(FusionService):
    def ask(self, request: AskRequest) -> AskResult:
        question = request.question.strip()
        if not question:
            raise InvalidInput.for_field("question", "问题不能为空 the question is empty")
        trace = Trace()
        run_id = str(uuid.uuid4())
        with trace.step("guardrail", "before", question=question) as step:
            pre = self.guardrails.before(question)
            step.output = {"findings": [f.code for f in pre.findings], "injection_score": pre.injection_score}
        if pre.refusal is not None:
            return self._store(
                request,
                self._refused(
                    run_id, question, pre.refusal.response, pre.findings, pre.refusal.alternative, trace
                ),
                trace,
            )
        ctx = self.tool_context(request.patient_id)
        context = ctx.patient_context()  # audited chart read when a patient is named
        context_text = context.text() if context else ""
        chart = ctx.chart()
        # the patient's name is an identifier even where no context word marks it (external endpoints)
        general = self.general.protecting([chart.patient.name]) if chart else self.general
        usable = general if pre.model_allowed and general.available else None
        memory = Memory(self.db, usable, self.graph)
        recalled: list[MemoryEntry] = []
        if request.session_id:
            with trace.step("memory", "recall") as step:
                recalled = memory.recall(self.principal.username, question)
                step.output = {"recalled": len(recalled)}
        with trace.step("intent", "recognise") as step:
            intents = recognise(question, self.graph, usable, "；".join(m.line() for m in recalled))
            step.output = {"intents": [i.name for i in intents.intents], "clarify": intents.clarify}
        with trace.step("tool", "answer_from_knowledge", question=question) as step:
            specialist = Answerer(self.kb, self.graph).answer(question, context, k=request.k)
            renamed = ctx.book.adopt(specialist.evidence)
            specialist_sentences = [
                s.model_copy(update={"citations": [renamed[c] for c in s.citations]})
                for s in specialist.sentences
            ]
            step.output = {"sentences": len(specialist_sentences), "confidence": specialist.confidence}
        tree = None
        symptoms = [m.entity.name for m in self.graph.mentions(question) if m.entity.type == "symptom"]
        if request.reasoning == "tot" and symptoms:
            with trace.step("reasoning", "tree-of-thought differential", findings=",".join(symptoms)) as step:
                tree = differential(symptoms, self.graph, usable, context_text)
                step.output = {"kept": [h.disease for h in tree.hypotheses if h.kept], "path": tree.path}
        outcome = _Outcome(
            sentences=specialist_sentences,
            findings=list(pre.findings),
            confidence=Confidence(
                value=specialist.confidence,
                method="specialist: 0.3 × retrieval-channel agreement + 0.7 × question coverage of the best "
                "sentence",
            ),
            fallback="no_model"
            if not general.available
            else None
            if pre.model_allowed
            else "prompt_injection",
        )
        if usable is not None:
            self._draft(
                usable, request, question, context_text, ctx.book.items, specialist_sentences, trace, outcome
            )
        o = outcome
        warnings = self._warnings(
            intents, o.confidence.value, o.findings, ctx.book.items, o.fallback, o.sentences
        )
        answer = _render(o.sentences)
        if not o.sentences and intents.clarify:
            answer = intents.question
        elif not o.sentences:
            answer = "知识库中未找到足够依据，建议咨询医生。No supported answer in the knowledge base."
        result = AskResult(
            run_id=run_id,
            question=question,
            answer=answer,
            sentences=o.sentences,
            evidence=ctx.book.items,
            confidence=o.confidence,
            provenance=Provenance(
                path=o.path,
                engine=SPECIALIST if o.path != "llm" else "general model, guardrails",
                model=o.model,
                prompt=o.prompt,
                fallback=o.fallback,
            ),
            status=Status.needs_clinician_confirmation,
            warnings=warnings,
            intents=intents,
            differential=tree,
            guardrails=o.findings,
            memory=recalled,
            reasoning=o.chain,
        )
        if request.session_id:
            with trace.step("memory", "remember") as step:
                memory.add_turn(self.principal.username, request.session_id, "user", question)
                added = memory.add_turn(self.principal.username, request.session_id, "assistant", answer)
                step.output = {"new_entries": len(added)}
        return self._store(request, result, trace)

    def _draft(
        self,
        general: GeneralModel,
        request: AskRequest,
        question: str,
        context_text: str,
        items: list[Evidence],
        specialist_sentences: list[AnswerSentence],
        trace: Trace,
        outcome: _Outcome,
    ) -> None:
        """The general model drafts from the (quarantined) evidence; the guardrails decide what stands."""
        evidence, quarantined = self.guardrails.quarantine(items)
        outcome.findings += quarantined
        template = prompt("cited_answer")
        usable_ids = {e.id for e in evidence}
        messages = template.render(
            reasoning="cot" if request.reasoning in {"cot", "tot"} else "direct",
            question=question,
            evidence=evidence,
            draft=[s for s in specialist_sentences if set(s.citations) <= usable_ids],
            patient=context_text,
        )
        with trace.step("llm", "cited_answer", prompt=template.ref) as step:
            drafted = general.structured(messages, _Draft, purpose="ask")
            if isinstance(drafted, Unavailable):
                step.outcome = outcome.fallback = drafted.reason.value
                return
            step.tokens = drafted.completion.usage.total_tokens
            step.output = {"sentences": len(drafted.value.sentences), "repairs": drafted.repairs}
        with trace.step("guardrail", "after") as step:
            guarded, path = guard(
                self.guardrails, drafted.value.sentences, [question, context_text], evidence
            )
            step.output = {
                "kept": len(guarded.sentences),
                "drafted": guarded.drafted,
                "findings": [f.code for f in guarded.findings],
            }
        outcome.findings += guarded.findings
        if not guarded.sentences:
            outcome.fallback = "guardrails_rejected"
            return
        share = len(guarded.sentences) / max(guarded.drafted, 1)
        outcome.sentences, outcome.path = guarded.sentences, path
        outcome.model, outcome.prompt, outcome.fallback = drafted.completion.model, template.ref, None
        outcome.chain = drafted.value.reasoning or None
        if path == "fused":
            outcome.confidence = Confidence(
                value=round(outcome.confidence.value * (0.5 + 0.5 * share), 3),
                method="fused: specialist confidence × (0.5 + 0.5 × share of drafted sentences that passed "
                "the guardrails)",
            )
        else:
            outcome.confidence = Confidence(
                value=round(min(0.3, 0.3 * share), 3),
                method="llm: no specialist evidence supports the answer; capped at 0.3",
            )

    @staticmethod
    def _warnings(
        intents: IntentResult,
        confidence: float,
        findings: list[Finding],
        evidence: list[Evidence],
        fallback: str | None,
        sentences: list[AnswerSentence],
    ) -> list[OutputWarning]:
        warnings: list[OutputWarning] = []
        if intents.red_flag:
            warnings.append(
                OutputWarning(
                    code="red_flag",
                    severity="high",
                    message="描述中有急症信号：如症状正在发生，请立即拨打 120 或到最近的急诊就诊。",
                )
            )
        for item in evidence:
            found = _ANY_CONFLICT.match(item.text)
            if item.kind == "graph" and found:
                warnings.append(
                    OutputWarning(
                        code="drug_conflict",
                        severity="high" if _SEVERE.match(item.text) else "caution",
                        message=f"{item.text} [{item.id}]",
                    )
                )
        if sentences and confidence < LOW_CONFIDENCE:
            warnings.append(OutputWarning(code="low_confidence", message="依据较弱，请结合临床判断。"))
        if not sentences:
            warnings.append(OutputWarning(code="no_evidence", message="没有找到可引用的依据。"))
        codes = {f.code for f in findings}
        if "prompt_injection" in codes:
            warnings.append(
                OutputWarning(
                    code="prompt_injection",
                    message="问题中含有试图改变系统规则的指令，已忽略，仅用专科路径回答。",
                )
            )
        if "injected_passage" in codes:
            warnings.append(
                OutputWarning(code="injected_passage", message="有检索段落含可疑指令，未提供给大模型。")
            )
        removed = [f for f in findings if f.action.value == "removed"]
        if removed:
            warnings.append(
                OutputWarning(
                    code="unsupported_claims_removed",
                    message=f"大模型草稿中 {len(removed)} 处无依据的内容（数字、药物、剂量或诊断）已删除。",
                )
            )
        if fallback and fallback not in {"no_model"}:
            warnings.append(
                OutputWarning(
                    code="llm_unavailable",
                    severity="info",
                    message=f"通用大模型未参与（{fallback}），本回答来自专科路径。",
                )
            )
        return warnings

    def _refused(
        self,
        run_id: str,
        question: str,
        response: str,
        findings: list[Finding],
        alternative: str,
        trace: Trace,
    ) -> AskResult:
        return AskResult(
            run_id=run_id,
            question=question,
            answer=response,
            sentences=[],
            evidence=[],
            confidence=Confidence(value=1.0, method="rule: harmful-request pattern (guardrails rules.toml)"),
            provenance=Provenance(path="specialist", engine="guardrails: safety"),
            status=Status.refused,
            warnings=[
                OutputWarning(code="harmful_request", severity="high", message=f"安全替代：{alternative}")
            ],
            intents=IntentResult(intents=[], clarify=False),
            guardrails=findings,
        )

    def _store(self, request: AskRequest, result: AskResult, trace: Trace) -> AskResult:
        steps = trace.as_json()
        result = result.model_copy(update={"trace": steps})
        store_run(
            self.db,
            self.principal,
            RunRecord(
                run_id=result.run_id,
                agent="ask",
                question=result.question,
                patient_id=request.patient_id,
                path=result.provenance.path,
                model=result.provenance.model,
                status=result.status.value,
                result=result.model_dump(mode="json", exclude={"trace"}),
                steps=steps,
            ),
        )
        return result
