"""``ask`` — the platform's one question entry (CLI ``medfusion ask``, API ``POST /api/ask``).

The knowledge layer answers first (hybrid retrieval + graph facts + conflict check against the patient's
chart): that is the specialist answer and the evidence. With a general model configured, the model drafts
from that evidence (``cited_answer`` prompt, direct or chain of thought), and the guardrails check the
draft — grounding, safety wording, PII — before anything is shown; what does not survive is removed and
reported, and if nothing survives the specialist answer stands. A question that names an emergency sign
(the red-flag lexicon, :mod:`medfusion.specialists.red_flags`) gets that sign's advice first — 120, 急诊, or
for a person in crisis the 12356 hotline — never a refusal for the words alone. ``tot`` adds a tree-of-thought
differential when the question describes symptoms. The sequence is the platform's
:class:`~medfusion.agents.fusion.FusionPipeline`; this module supplies ask's stages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from medfusion.agents.drafting import ModelSentence
from medfusion.agents.fusion import (
    Draft,
    DraftRequest,
    FusionApp,
    FusionRun,
    FusionService,
    Outcome,
    SpecialistAnswer,
    render,
)
from medfusion.agents.intent import IntentResult, recognise
from medfusion.agents.memory import Memory, MemoryEntry
from medfusion.agents.reasoning import Differential, differential
from medfusion.apps.ask.models import AskRequest, AskResult
from medfusion.contract import Confidence, Evidence, OutputWarning, Severity, WarningCode
from medfusion.errors import InvalidInput
from medfusion.knowledge.answers import SPECIALIST, Answerer, PatientContext
from medfusion.llm import prompt
from medfusion.specialists import red_flags

LOW_CONFIDENCE = 0.35
_SEVERE = re.compile(r"^【(contraindicated|major|severe|high)】")
_ANY_CONFLICT = re.compile(r"^【(\w+)】")
NO_ANSWER = "知识库中未找到足够依据，建议咨询医生。No supported answer in the knowledge base."


class _Draft(Draft):
    sentences: list[ModelSentence] = Field(min_length=1, max_length=12)


@dataclass
class _Specialist(SpecialistAnswer):
    intents: IntentResult = field(default_factory=lambda: IntentResult(intents=[], clarify=False))
    tree: Differential | None = None
    recalled: list[MemoryEntry] = field(default_factory=list)
    context: PatientContext | None = None
    memory: Memory | None = None  # the run's memory: recalled from before the answer, written to after it


class AskApp(FusionApp[AskRequest, _Specialist, AskResult]):
    name = "ask"
    engine = SPECIALIST

    def subject(self, request: AskRequest) -> str:
        return request.question.strip()

    def patient_id(self, request: AskRequest) -> str | None:
        return request.patient_id

    def specialist(self, run: FusionRun, request: AskRequest) -> _Specialist:
        s, trace, question = self.service, run.trace, self.subject(request)
        context = run.tools.patient_context()  # audited chart read when a patient is named
        memory = Memory(s.db, run.usable, s.graph)
        recalled: list[MemoryEntry] = []
        if request.session_id:
            with trace.step("memory", "recall") as step:
                recalled = memory.recall(s.principal.username, question)
                step.output = {"recalled": len(recalled)}
        with trace.step("intent", "recognise") as step:
            intents = recognise(question, s.graph, run.usable, "；".join(m.line() for m in recalled))
            step.output = {"intents": [i.name for i in intents.intents], "clarify": intents.clarify}
        with trace.step("tool", "answer_from_knowledge", question=question) as step:
            answer = Answerer(s.kb, s.graph).answer(question, context, k=request.k)
            renamed = run.book.adopt(answer.evidence)
            sentences = [
                x.model_copy(update={"citations": [renamed[c] for c in x.citations]})
                for x in answer.sentences
            ]
            step.output = {"sentences": len(sentences), "confidence": answer.confidence}
        tree = None
        symptoms = [m.entity.name for m in s.graph.lexicon.mentions(question) if m.entity.type == "symptom"]
        if request.reasoning == "tot" and symptoms:
            with trace.step("reasoning", "tree-of-thought differential", findings=",".join(symptoms)) as step:
                tree = differential(symptoms, s.graph, run.usable, context.text() if context else "")
                step.output = {"kept": [h.disease for h in tree.hypotheses if h.kept], "path": tree.path}
        return _Specialist(
            sentences=sentences,
            confidence=Confidence(
                value=answer.confidence,
                method="specialist: 0.3 × retrieval-channel agreement + 0.7 × question coverage of the best "
                "sentence",
            ),
            red_flag=intents.red_flag,
            intents=intents,
            tree=tree,
            recalled=recalled,
            memory=memory,
            context=context,
        )

    def draft(
        self, run: FusionRun, request: AskRequest, answer: _Specialist, evidence: list[Evidence]
    ) -> DraftRequest:
        template = prompt("cited_answer")
        usable = {e.id for e in evidence}
        context_text = answer.context.text() if answer.context else ""
        question = self.subject(request)
        messages = template.render(
            reasoning="cot" if request.reasoning in {"cot", "tot"} else "direct",
            question=question,
            evidence=evidence,
            draft=[s for s in answer.sentences if set(s.citations) <= usable],
            patient=context_text,
        )
        return DraftRequest(template, messages, [question, context_text], purpose="ask", schema=_Draft)

    def warnings(
        self, run: FusionRun, request: AskRequest, answer: _Specialist, outcome: Outcome
    ) -> list[OutputWarning]:
        warnings: list[OutputWarning] = []
        for item in run.book.items:
            found = _ANY_CONFLICT.match(item.text)
            if item.kind == "graph" and found:
                severity: Severity = "high" if _SEVERE.match(item.text) else "caution"
                warnings.append(
                    OutputWarning.of(WarningCode.drug_conflict, severity, detail=f"{item.text} [{item.id}]")
                )
        if outcome.sentences and outcome.confidence.value < LOW_CONFIDENCE:
            warnings.append(OutputWarning.of(WarningCode.low_confidence))
        if not outcome.sentences:
            warnings.append(OutputWarning.of(WarningCode.no_evidence))
        return warnings

    def output(
        self,
        run: FusionRun,
        request: AskRequest,
        answer: _Specialist,
        outcome: Outcome,
        fields: dict[str, Any],
    ) -> AskResult:
        text = render(outcome.sentences)
        flags = run.pre.red_flags
        if not outcome.sentences:
            # a person in crisis ("我不想死") gets the supportive advice, not "nothing found" or a menu
            crisis = any(f.advice == "crisis" for f in flags)
            text = "" if crisis else answer.intents.question if answer.intents.clarify else NO_ANSWER
        if flags:  # the emergency advice leads the answer (red_flags.toml: 120 / 急诊 / 12356)
            text = f"{red_flags.advice_text(flags)}\n\n{text}".strip()
        return AskResult(
            **fields,
            answer=text,
            question=self.subject(request),
            intents=answer.intents,
            differential=answer.tree,
            memory=answer.recalled,
        )

    def refused(self, request: AskRequest, fields: dict[str, Any]) -> AskResult:
        return AskResult(
            **fields, question=self.subject(request), intents=IntentResult(intents=[], clarify=False)
        )

    def finish(
        self, run: FusionRun, request: AskRequest, answer: _Specialist, output: AskResult
    ) -> AskResult:
        if request.session_id and answer.memory is not None:
            user = self.service.principal.username
            with run.trace.step("memory", "remember") as step:
                answer.memory.add_turn(user, request.session_id, "user", output.question)
                added = answer.memory.add_turn(user, request.session_id, "assistant", output.answer)
                step.output = {"new_entries": len(added)}
        return output


class AskService(FusionService):
    def ask(self, request: AskRequest) -> AskResult:
        if not request.question.strip():
            raise InvalidInput.for_field("question", "问题不能为空 the question is empty")
        return self.pipeline.run(AskApp(self), request)
