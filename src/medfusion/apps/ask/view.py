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

# Said under every answer, refused or not (the assistive-output rule of the platform, ARCHITECTURE.md).
SAFETY = "本回答由 AI 辅助生成，仅供临床参考，不能替代医生的诊断与治疗决定；须经医生确认后方可使用。"
PATH_LABELS = {"specialist": "专科路径", "llm": "通用大模型", "fused": "通专融合"}
PATH_NOTES = {
    "specialist": "由知识库检索与知识图谱（确定性专科引擎）作答",
    "llm": "由通用大模型作答，专科证据不足，置信度上限 0.3",
    "fused": "通用大模型依据专科证据起草，经护栏逐句核对",
}
STATUS_LABELS = {
    Status.needs_clinician_confirmation.value: "待医生确认",
    Status.confirmed.value: "医生已确认",
    Status.edited.value: "医生已修改",
    Status.rejected.value: "医生已驳回",
    Status.refused.value: "已拒答",
}
STATUS_BADGES = {
    Status.needs_clinician_confirmation.value: "badge-warn",
    Status.confirmed.value: "badge-ok",
    Status.edited.value: "badge-ok",
    Status.rejected.value: "badge-muted",
    Status.refused.value: "badge-danger",
}
FALLBACK_LABELS = {
    "no_model": "未配置通用大模型",
    "unreachable": "通用大模型无法连接",
    "timeout": "通用大模型超时",
    "bad_key": "通用大模型密钥无效",
    "rate_limited": "通用大模型限流",
    "server_error": "通用大模型服务错误",
    "bad_request": "通用大模型拒绝请求",
    "bad_response": "通用大模型返回异常",
    "circuit_open": "通用大模型连续失败，暂停调用",
    "invalid_output": "通用大模型输出格式不合格",
    "budget_exhausted": "调用额度已用完",
    "guardrails_rejected": "大模型草稿未通过护栏核对",
    "prompt_injection": "问题含改变规则的指令，未调用大模型",
    "step_budget": "步骤预算用尽",
    "token_budget": "令牌预算用尽",
    "refused": "有害请求，已拒答",
}
KIND_LABELS = {"passage": "文献段落", "graph": "知识图谱", "record": "病历", "rule": "规则", "score": "评分"}
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
class AnswerView:
    result: AskResult
    status: str
    lead: str  # emergency advice before the sentences, or the whole answer when there are none
    sentences: list[AnswerSentence]
    cited: list[EvidenceView]
    uncited: list[EvidenceView]
    warnings: list[OutputWarning]
    alternatives: list[str] = field(default_factory=list)  # a refusal's safe alternative

    @property
    def refused(self) -> bool:
        return self.result.status is Status.refused

    @property
    def pending(self) -> bool:
        return self.status == Status.needs_clinician_confirmation.value

    @property
    def path(self) -> str:
        return self.result.provenance.path

    @property
    def path_label(self) -> str:
        return PATH_LABELS[self.path]

    @property
    def path_note(self) -> str:
        return PATH_NOTES[self.path]

    @property
    def fallback_label(self) -> str | None:
        fallback = self.result.provenance.fallback
        return FALLBACK_LABELS.get(fallback.value, fallback.value) if fallback else None

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def status_badge(self) -> str:
        return STATUS_BADGES.get(self.status, "badge-muted")

    @property
    def confidence_percent(self) -> int:
        return round(self.result.confidence.value * 100)


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
        result=result,
        status=status or result.status.value,
        lead=lead,
        sentences=result.sentences,
        cited=[v for v in views if v.id in cited_ids],
        uncited=[v for v in views if v.id not in cited_ids],
        warnings=[w for w in result.warnings if not (refused and w.code is WarningCode.harmful_request)],
        alternatives=alternatives,
    )
