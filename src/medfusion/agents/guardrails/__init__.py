"""Guardrails around the general model: before generation (red flags first, then harmful request, prompt
injection in the question and in retrieved passages) and after it (grounding of numbers, drugs, doses and
diagnoses; safety wording; PII leaks). They use the knowledge graph and the privacy analyzer, so they live
in ``agents`` rather than in ``llm``; every decision is a :class:`Finding` the answer carries. The
emergency signs come from the one red-flag lexicon (:mod:`medfusion.specialists.red_flags`) and are read
before the harmful-request rules, so a refused request still carries its emergency advice."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from medfusion.agents.guardrails import injection
from medfusion.agents.guardrails.findings import Action, Check, Finding
from medfusion.agents.guardrails.grounding import Grounder, check_grounding
from medfusion.agents.guardrails.pii_leak import LeakCheck
from medfusion.agents.guardrails.safety import Refusal, harmful_request, soften
from medfusion.contract import AnswerSentence, Evidence
from medfusion.graph import Graph
from medfusion.specialists import red_flags
from medfusion.specialists.red_flags import RedFlag

__all__ = ["Action", "Check", "Finding", "GuardedDraft", "Guardrails", "PreCheck", "RedFlag", "Refusal"]


class PreCheck(BaseModel):
    red_flags: list[RedFlag] = Field(default_factory=list)  # read first: a refusal never drops them
    refusal: Refusal | None = None
    injection_score: float = 0.0
    findings: list[Finding] = Field(default_factory=list)

    @property
    def model_allowed(self) -> bool:
        """The general model may see this question (no refusal, no injection attempt)."""
        return self.refusal is None and self.injection_score < injection.THRESHOLD


class GuardedDraft(BaseModel):
    sentences: list[AnswerSentence]
    findings: list[Finding]
    drafted: int
    claims_checked: int


class Guardrails:
    def __init__(self, graph: Graph | None, strict: bool = True) -> None:
        self.grounder = Grounder(graph)
        self.leaks = LeakCheck()
        self.strict = strict

    def before(self, question: str) -> PreCheck:
        flags = red_flags.detect(question)
        refusal = harmful_request(question)
        hits = injection.scan(question)
        found = injection.score(hits)
        findings = [
            Finding(check=Check.safety, code="red_flag", action=Action.flagged, detail=f"{f.code}: {f.words}")
            for f in flags
        ]
        if refusal:
            findings.append(
                Finding(
                    check=Check.safety,
                    code=f"harmful_{refusal.code}",
                    action=Action.refused,
                    detail=f"{refusal.code}: {refusal.basis}",  # rule harm_others#2 / classifier p=0.93
                )
            )
        if found >= injection.THRESHOLD:
            findings.append(
                Finding(
                    check=Check.injection,
                    code="prompt_injection",
                    action=Action.flagged,
                    detail=", ".join(sorted({h.code for h in hits})),
                )
            )
        return PreCheck(red_flags=flags, refusal=refusal, injection_score=found, findings=findings)

    def quarantine(self, evidence: Sequence[Evidence]) -> tuple[list[Evidence], list[Finding]]:
        """Retrieved passages that carry instructions are kept away from the model (indirect injection)."""
        clean: list[Evidence] = []
        findings: list[Finding] = []
        for item in evidence:
            hits = injection.scan(item.text)
            if injection.score(hits) >= injection.THRESHOLD:
                findings.append(
                    Finding(
                        check=Check.injection,
                        code="injected_passage",
                        action=Action.quarantined,
                        detail=", ".join(sorted({h.code for h in hits})),
                        evidence_id=item.id,
                    )
                )
            else:
                clean.append(item)
        return clean, findings

    def after(
        self, sentences: Sequence[AnswerSentence], given: Sequence[str], evidence: Sequence[Evidence]
    ) -> GuardedDraft:
        """Grounding (strict: unsupported claims drop their sentence), then safety wording and PII on what
        stands. ``given`` is what the asker supplied (question, patient context)."""
        texts = {e.id: f"{e.text}\n{e.source}" for e in evidence}
        grounded = check_grounding(
            self.grounder, [(s.text, s.citations) for s in sentences], given, texts, self.strict
        )
        findings = list(grounded.findings)
        allowed = [*given, *texts.values()]
        kept: list[AnswerSentence] = []
        for index in grounded.kept:
            sentence = sentences[index]
            text, softened = soften(sentence.text, index)
            text, leaked = self.leaks.check(text, allowed, index)
            findings += softened + leaked
            kept.append(sentence.model_copy(update={"text": text}))
        return GuardedDraft(
            sentences=kept, findings=findings, drafted=len(sentences), claims_checked=grounded.claims_checked
        )
