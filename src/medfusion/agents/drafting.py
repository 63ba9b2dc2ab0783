"""From a model's words to a guarded answer: split the text into sentences with the evidence ids they cite
(``[K1]``, ``[G2,P1]``), drop ids that do not exist, run the guardrails, and name the path — ``fused`` when
what stands cites specialist evidence, ``llm`` when it stands on the model and the asker's input alone."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel

from medfusion.agents.guardrails import Action, Check, Finding, GuardedDraft, Guardrails
from medfusion.contract import AnswerSentence, Evidence, Path

_MARK = re.compile(r"\[((?:[KGPRS]\d+)(?:\s*[,，、]\s*[KGPRS]\d+)*)\]")
_SENTENCE = re.compile(r"[^。！？!?\n]+(?:[。！？!?]+)?(?:\s*\[[^\]]*\])*")


class ModelSentence(BaseModel):
    text: str
    citations: list[str] = []


def split_cited(text: str) -> list[ModelSentence]:
    """Sentences with their trailing or inline citation marks (marks are removed from the text)."""
    sentences = []
    for m in _SENTENCE.finditer(text):
        raw = m.group().strip()
        if not raw or (raw.startswith("[") and _MARK.fullmatch(raw)):
            continue
        ids = [i.strip() for found in _MARK.findall(raw) for i in re.split(r"[,，、]", found)]
        clean = _MARK.sub("", raw).strip()
        if len(clean) >= 2:
            sentences.append(ModelSentence(text=clean, citations=list(dict.fromkeys(ids))))
    return sentences


def guard(
    guardrails: Guardrails,
    sentences: Sequence[ModelSentence],
    given: Sequence[str],
    evidence: Sequence[Evidence],
) -> tuple[GuardedDraft, Path]:
    known = {e.id for e in evidence}
    findings: list[Finding] = []
    cleaned: list[AnswerSentence] = []
    for index, s in enumerate(sentences):
        bogus = [c for c in s.citations if c not in known]
        if bogus:
            findings.append(
                Finding(
                    check=Check.grounding,
                    code="unknown_citation",
                    action=Action.flagged,
                    detail=",".join(bogus),
                    sentence=index,
                )
            )
        cleaned.append(AnswerSentence(text=s.text, citations=[c for c in s.citations if c in known]))
    guarded = guardrails.after(cleaned, given, evidence)
    guarded.findings = findings + guarded.findings
    path: Path = "fused" if any(s.citations for s in guarded.sentences) else "llm"
    return guarded, path
