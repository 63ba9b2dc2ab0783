"""An :class:`~medfusion.apps.ask.models.AskResult` as the 智能问答 page shows it: each answer sentence with
its citation marks, each cited passage with the quoted span marked, the path that answered, the warnings,
a refusal with its safe alternative, and the status until a clinician confirms.

Nothing of the contract is dropped here: every warning is shown, the emergency advice that leads an answer
is shown first, and a refusal keeps its response and alternative. Pure functions over the result (no
database, no request), so the page template stays a layout."""

from __future__ import annotations

from dataclasses import dataclass, field

from medfusion.agents.fusion import render
from medfusion.apps.ask.models import AskResult
from medfusion.apps.assistive import (
    FALLBACK_LABELS,
    KIND_LABELS,
    PATH_LABELS,
    SAFETY,
    STATUS_LABELS,
    ContractView,
)
from medfusion.contract import AnswerSentence, Evidence, OutputWarning, Status, WarningCode

__all__ = [
    "FALLBACK_LABELS",
    "PATH_LABELS",
    "REASONING",
    "SAFETY",
    "STATUS_LABELS",
    "AnswerView",
    "EvidenceView",
    "Segment",
    "answer_view",
    "highlight",
]

# One vocabulary for every assistive page (apps.assistive): the same safety sentence, path, status and
# fallback labels as the consult and MDT pages.
REASONING = (
    ("direct", "直接回答"),
    ("cot", "逐步推理（思维链；需配置通用大模型）"),
    ("tot", "鉴别诊断（思维树，症状类问题）"),
)
WARNING_CLASSES = {"high": "alert-danger", "caution": "alert-warn", "info": "alert-info"}


@dataclass(frozen=True)
class Segment:
    text: str
    marked: bool  # the span an answer sentence quotes


@dataclass
class EvidenceView:
    id: str
    kind: str
    title: str  # the document (§ section) for a passage; the fact's source otherwise
    source: str
    authority: str | None
    review_status: str | None
    segments: list[Segment]


@dataclass
class AnswerView(ContractView):
    lead: str  # emergency advice before the sentences, or the whole answer when there are none
    sentences: list[AnswerSentence]
    cited: list[EvidenceView]
    uncited: list[EvidenceView]
    warnings: list[OutputWarning]
    alternatives: list[str] = field(default_factory=list)  # a refusal's safe alternative

    @property
    def result(self) -> AskResult:
        assert isinstance(self.output, AskResult)
        return self.output


def warning_class(warning: OutputWarning) -> str:
    return WARNING_CLASSES[warning.severity]


def highlight(text: str, spans: list[tuple[int, int]]) -> list[Segment]:
    """``text`` cut into plain and marked segments; overlapping or touching spans merge."""
    merged: list[list[int]] = []
    for start, end in sorted((max(0, s), min(len(text), e)) for s, e in spans):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    segments: list[Segment] = []
    at = 0
    for start, end in merged:
        if start > at:
            segments.append(Segment(text[at:start], False))
        segments.append(Segment(text[start:end], True))
        at = end
    if at < len(text) or not segments:
        segments.append(Segment(text[at:], False))
    return segments


def _span(item: Evidence, sentence: AnswerSentence) -> tuple[int, int] | None:
    """Where ``sentence`` stands in ``item``'s text: from its document location when it has one (the
    specialist path quotes passages), else where its words occur verbatim; ``None`` for a paraphrase."""
    where, passage = sentence.location, item.citation
    size = len(sentence.text)
    if where and passage and where.document_id == passage.document_id:
        start = where.start - passage.start
        if start >= 0 and item.text[start : start + size] == sentence.text:
            return start, start + size
    found = item.text.find(sentence.text) if sentence.text else -1
    return (found, found + size) if found >= 0 else None


def _title(item: Evidence) -> str:
    """A passage's document and section (``痛风 § 急性期治疗``); any other item's source."""
    cited = item.citation
    if cited is None:
        return item.source
    section = cited.section.removeprefix(f"{cited.title} > ")
    return f"{cited.title} § {section}" if section and section != cited.title else cited.title


def _evidence(item: Evidence, sentences: list[AnswerSentence]) -> EvidenceView:
    spans = [span for s in sentences if item.id in s.citations and (span := _span(item, s)) is not None]
    return EvidenceView(
        id=item.id,
        kind=KIND_LABELS.get(item.kind, item.kind),
        title=_title(item),
        source=item.source,
        authority=item.authority,
        review_status=item.review_status,
        segments=highlight(item.text, spans),
    )


def answer_view(result: AskResult, status: str | None = None) -> AnswerView:
    """The page's view of ``result``; ``status``: the stored run's status now (a clinician may have acted)."""
    cited_ids = {c for s in result.sentences for c in s.citations}
    views = [_evidence(e, result.sentences) for e in result.evidence]
    rendered = render(result.sentences)
    if result.sentences and result.answer.endswith(rendered):
        lead = result.answer.removesuffix(rendered).strip()
    else:
        lead = result.answer.strip()
    refused = result.status is Status.refused
    alternatives = [w.message for w in result.warnings if refused and w.code is WarningCode.harmful_request]
    return AnswerView(
        output=result,
        status=status or result.status.value,
        lead=lead,
        sentences=result.sentences,
        cited=[v for v in views if v.id in cited_ids],
        uncited=[v for v in views if v.id not in cited_ids],
        warnings=[w for w in result.warnings if not (refused and w.code is WarningCode.harmful_request)],
        alternatives=alternatives,
    )
