"""The 待审草稿 page's view of drafts and of what a review did.

A pending draft is shown as a clinician reads it: the Markdown rendered as a document with each ``[K1]``
marker a link to its evidence, the evidence list, the path that produced it, its warnings, its status
(待医生确认) and the safety sentence. After a review the page says what happened and where the document went
— a chart note for apps that write back (``AppSpec.write_back``), else the run and the feedback data —
read from the stored feedback, not from the form."""

from __future__ import annotations

import re
from dataclasses import dataclass

from markupsafe import Markup

from medfusion.agents.runs import PendingRun
from medfusion.apps.page_frame import render_markdown
from medfusion.contract import Evidence, OutputWarning
from medfusion.feedback.service import Action, FeedbackEntry, write_back_note_id, write_back_title

__all__ = [
    "ACTION_LABELS",
    "AGENT_LABELS",
    "PATH_LABELS",
    "SAFETY_SENTENCE",
    "Confirmation",
    "DraftView",
    "confirmation",
    "draft_view",
]

AGENT_LABELS = {"ask": "问答", "consult": "口袋主任医师", "mdt": "多学科会诊"}
PATH_LABELS = {"specialist": "专科引擎 specialist", "llm": "通用大模型 llm", "fused": "通专融合 fused"}
ACTION_LABELS = {Action.accept: "已采纳", Action.edit: "已修改并采纳", Action.reject: "已驳回"}
FALLBACK_LABELS = {
    "no_model": "未配置通用大模型，由专科引擎作答",
    "guardrails_rejected": "大模型草稿未通过护栏检查，采用专科引擎结果",
    "prompt_injection": "检测到提示注入，未调用大模型",
}
KIND_LABELS = {"graph": "知识图谱", "rule": "规则", "score": "评分", "passage": "文献段落"}
SAFETY_SENTENCE = "AI 生成的草稿仅供临床参考，不能替代医生的诊断与判断；须经医生采纳、修改或驳回后才生效。"
_MARKER = re.compile(r"\[([A-Z]{1,3}\d{1,4})\]")
_TAG = re.compile(r"(<[^>]*>)")


@dataclass(frozen=True)
class EvidenceView:
    anchor: str  # the list item's id, unique on the page
    id: str  # K1, G1 …
    kind: str
    title: str
    section: str
    text: str
    source: str


@dataclass(frozen=True)
class DraftView:
    run: PendingRun
    label: str
    document: Markup  # the draft rendered, citation markers linked
    evidence: list[EvidenceView]
    path: str
    path_label: str
    fallback: str | None
    warnings: list[OutputWarning]
    confidence: float


def _evidence(prefix: str, items: list[Evidence]) -> list[EvidenceView]:
    return [
        EvidenceView(
            anchor=f"ev-{prefix}-{e.id}",
            id=e.id,
            kind=e.kind,
            title=e.citation.title if e.citation else KIND_LABELS.get(e.kind, e.kind),
            section=e.citation.section if e.citation and e.citation.section != e.citation.title else "",
            text=e.text,
            source=e.source,
        )
        for e in items
    ]


def cite_links(html: Markup, prefix: str, ids: set[str]) -> Markup:
    """``[K1]`` markers in rendered HTML as links to their evidence (only markers the draft has evidence for).
    The HTML is our own renderer's output with raw HTML disabled, so every ``<`` opens one of its tags; only
    the text between tags is linked — a marker in a link title or an image's alt text stays as it is (a link
    written there would break the attribute open)."""

    def link(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in ids:
            return match.group(0)
        return f'<a class="cite" href="#ev-{prefix}-{key}" aria-label="依据 {key}">[{key}]</a>'

    pieces = _TAG.split(str(html))  # text, tag, text, tag, … (the tags at odd positions)
    return Markup("".join(p if i % 2 else _MARKER.sub(link, p) for i, p in enumerate(pieces)))


def draft_view(run: PendingRun) -> DraftView:
    draft = run.draft
    prefix = run.run_id[:8]
    evidence = _evidence(prefix, draft.evidence)
    fallback = draft.provenance.fallback.value if draft.provenance.fallback else None
    return DraftView(
        run=run,
        label=AGENT_LABELS.get(run.agent, run.agent),
        document=cite_links(render_markdown(run.answer), prefix, {e.id for e in evidence}),
        evidence=evidence,
        path=draft.provenance.path,
        path_label=PATH_LABELS.get(draft.provenance.path, draft.provenance.path),
        fallback=FALLBACK_LABELS.get(fallback, fallback) if fallback else None,
        warnings=draft.warnings,
        confidence=draft.confidence.value,
    )


@dataclass(frozen=True)
class Confirmation:
    run_id: str
    action: Action
    headline: str  # 已采纳 问答草稿
    who: str
    entry: FeedbackEntry
    where: str  # where the document went, in a sentence
    link: str | None  # the chart notes, when it became one
    by_someone_else: bool  # the draft had been reviewed before this user's submit (nothing new recorded)


def confirmation(entry: FeedbackEntry, username: str, expected: Action | None) -> Confirmation:
    """What the review recorded in ``entry`` did, worded for the page."""
    label = AGENT_LABELS.get(entry.kind, entry.kind)
    title = write_back_title(entry.kind)
    link = None
    if entry.action is Action.reject:
        where = f"驳回原因：{entry.reason or '—'}。草稿不写入病历，其引用资料的检索权重已下调。"
    elif title and entry.patient_id:
        note = write_back_note_id(entry.patient_id, entry.kind, entry.run_id)
        where = f"已写入患者 {entry.patient_id} 的病历文书「{title}」（文书号 {note}）。"
        link = f"/patients/{entry.patient_id}#notes"
    else:
        where = "状态已更新并保存在该次运行记录与反馈数据中，引用资料的检索权重随之调整；此类草稿不写入病历。"
    return Confirmation(
        run_id=entry.run_id,
        action=entry.action,
        headline=f"{ACTION_LABELS[entry.action]}{label}草稿",
        who=entry.username,
        entry=entry,
        where=where,
        link=link,
        by_someone_else=entry.username != username or (expected is not None and expected is not entry.action),
    )
