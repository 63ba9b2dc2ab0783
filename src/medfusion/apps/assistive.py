"""How an assistive output reads on a page — the part of the app frame every app's result page shares.

Every clinical output carries the contract (``medfusion.contract``): which path produced it, the evidence it
rests on, its warnings, a confidence and a status that stays 待医生确认 until a clinician acts. A page shows
all of it, in one vocabulary: :func:`output_view` turns an output into what the macros in
``apps/assistive.html`` lay out (path tag, status badge, warnings with the red flags first, the evidence
list, the safety sentence), and :func:`cited_text` / :func:`linked_markdown` turn the ``[K1]``/``[G2,K3]``
marks in an app's text into links to that list. Nothing here drops a warning or a refusal's wording.

Apps import this module (it is part of the frame, like :mod:`medfusion.apps.page_frame`), never each other."""

from __future__ import annotations

import re
from dataclasses import dataclass

from markupsafe import Markup

from medfusion.apps.page_frame import render_markdown
from medfusion.contract import ClinicalOutput, Evidence, OutputWarning, Status, WarningCode

__all__ = [
    "FALLBACK_LABELS",
    "PATH_LABELS",
    "SAFETY",
    "STATUS_LABELS",
    "Alert",
    "ContractView",
    "EvidenceItem",
    "OutputView",
    "Piece",
    "cited_text",
    "evidence_items",
    "linked_markdown",
    "output_view",
]

# Said under every assistive output, refused or not. An AI draft is never the decision: the
# 互联网诊疗监管细则（试行）(国卫办医发〔2022〕2号) bars AI software from standing in for the physician.
SAFETY = "本内容由 AI 辅助生成，仅供临床参考，不能替代医师的诊断与治疗决策；须经医生审核确认后方可用于诊疗。"
PATH_LABELS = {"specialist": "专科路径", "llm": "通用大模型", "fused": "通专融合"}
PATH_NOTES = {
    "specialist": "由知识图谱、指南检索与规则（确定性专科引擎）得出",
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
    "prompt_injection": "输入含改变规则的指令，未调用大模型",
    "step_budget": "步骤预算用尽",
    "token_budget": "令牌预算用尽",
    "refused": "有害请求，已拒答",
}
KIND_LABELS = {"passage": "指南段落", "graph": "知识图谱", "record": "病历", "rule": "规则", "score": "评分"}
_ALERT = {"high": "alert-danger", "caution": "alert-warn", "info": "alert-info"}
_SEVERITY_ORDER = {"high": 0, "caution": 1, "info": 2}
# an evidence mark as apps write it: [K1], [G2,K3] (ids are a letter and a number)
_MARK = re.compile(r"\[((?:[A-Z]\d+)(?:\s*[,，]\s*[A-Z]\d+)*)\]")


@dataclass(frozen=True)
class Piece:
    """Plain text, or an evidence id to link (``cite``)."""

    text: str
    cite: str | None = None


def cited_text(text: str) -> list[Piece]:
    """``text`` with its ``[K1]``/``[G2,K3]`` marks cut out as links, the words around them kept as is."""
    pieces: list[Piece] = []
    at = 0
    for m in _MARK.finditer(text):
        if m.start() > at:
            pieces.append(Piece(text[at : m.start()]))
        pieces += [Piece(ident, ident) for ident in re.split(r"\s*[,，]\s*", m.group(1))]
        at = m.end()
    if at < len(text) or not pieces:
        pieces.append(Piece(text[at:]))
    return pieces


def linked_markdown(text: str | None) -> Markup:
    """A Markdown document (raw HTML shown as text) with its evidence marks as links to ``#ev-<id>``."""

    def link(m: re.Match[str]) -> str:
        ids = re.split(r"\s*[,，]\s*", m.group(1))
        return "".join(f'<a class="cite" href="#ev-{i}">[{i}]</a>' for i in ids)

    # marks are matched on the escaped HTML; an id is [A-Z]\d+, so nothing else can be injected
    return Markup(_MARK.sub(link, str(render_markdown(text))))


@dataclass(frozen=True)
class EvidenceItem:
    id: str
    kind: str
    title: str  # a passage's document § section; any other item's source
    source: str
    text: str
    where: str | None  # a passage's exact span: document § section [start:end]
    authority: str | None
    review_status: str | None


def _title(item: Evidence) -> str:
    cited = item.citation
    if cited is None:
        return item.source
    section = cited.section.removeprefix(f"{cited.title} > ")
    return f"{cited.title} § {section}" if section and section != cited.title else cited.title


def evidence_items(evidence: list[Evidence]) -> list[EvidenceItem]:
    return [
        EvidenceItem(
            id=e.id,
            kind=KIND_LABELS.get(e.kind, e.kind),
            title=_title(e),
            source=e.source,
            text=e.text,
            where=e.citation.label() if e.citation else None,
            authority=e.authority,
            review_status=e.review_status,
        )
        for e in evidence
    ]


@dataclass(frozen=True)
class Alert:
    warning: OutputWarning
    css: str  # alert-danger | alert-warn | alert-info
    red_flag: bool

    @property
    def role(self) -> str | None:
        return "alert" if self.css != "alert-info" else None


@dataclass
class ContractView:
    """What every assistive page shows of an output's contract: its status (待医生确认 until a clinician
    acts), the path that produced it and why the model did not take part, and its confidence."""

    output: ClinicalOutput
    status: str  # the stored run's status (a clinician may have acted since it ran)

    @property
    def pending(self) -> bool:
        return self.status == Status.needs_clinician_confirmation.value

    @property
    def refused(self) -> bool:
        return self.output.status is Status.refused

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def status_badge(self) -> str:
        return STATUS_BADGES.get(self.status, "badge-muted")

    @property
    def path(self) -> str:
        return self.output.provenance.path

    @property
    def path_label(self) -> str:
        return PATH_LABELS[self.path]

    @property
    def path_note(self) -> str:
        return PATH_NOTES[self.path]

    @property
    def fallback_label(self) -> str | None:
        fallback = self.output.provenance.fallback
        return FALLBACK_LABELS.get(fallback.value, fallback.value) if fallback else None

    @property
    def confidence_percent(self) -> int:
        return round(self.output.confidence.value * 100)


@dataclass
class OutputView(ContractView):
    alerts: list[Alert]  # red flags first, then by severity; every warning, none dropped
    evidence: list[EvidenceItem]

    @property
    def red_flags(self) -> list[Alert]:
        return [a for a in self.alerts if a.red_flag]

    @property
    def other_alerts(self) -> list[Alert]:
        return [a for a in self.alerts if not a.red_flag]

    @property
    def safety(self) -> str:
        return SAFETY


def output_view(output: ClinicalOutput, status: str | None = None) -> OutputView:
    """``output`` as a page shows it; ``status``: the stored run's current status (default: the output's)."""
    ordered = sorted(
        output.warnings,
        key=lambda w: (w.code is not WarningCode.red_flag, _SEVERITY_ORDER.get(w.severity, 3)),
    )
    alerts = [
        Alert(w, "alert-danger" if flag else _ALERT.get(w.severity, "alert-warn"), flag)
        for w in ordered
        for flag in [w.code is WarningCode.red_flag]
    ]
    return OutputView(
        output=output,
        status=status or output.status.value,
        alerts=alerts,
        evidence=evidence_items(output.evidence),
    )
