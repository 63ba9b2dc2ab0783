"""MDT minutes in Markdown (会诊纪要): every specialty's view, the consensus, the conflicts with their
explaining paths, and where every line comes from (evidence ids and each view's path) — a draft."""

from __future__ import annotations

from medfusion.apps.mdt.models import ConsensusItem, MdtCase, SpecialtyView
from medfusion.contract import Evidence
from medfusion.graph.conflicts import Conflict

PATH_LABELS = {"specialist": "专科路径", "llm": "通用模型", "fused": "通专融合"}
_SEX = {"male": "男", "female": "女", "other": "其他", "unknown": "未知"}


def render(
    case: MdtCase,
    routing: str,
    views: list[SpecialtyView],
    consensus: list[ConsensusItem],
    conflicts: list[Conflict],
    evidence: list[Evidence],
    rounds: int,
    confidence: float,
    question: str,
) -> str:
    lines = [
        "# 多学科会诊纪要（草稿，需主持医生确认后写入病历）",
        "",
        f"- 患者：{case.patient_id}，{sex_text(case.sex)}，{age_text(case.age)}",
        f"- 诊断：{'；'.join(f'{d.name}（{d.icd10}）' for d in case.diagnoses) or '无'}",
        f"- 在用药物：{'、'.join(case.medications) or '无'}；过敏：{'、'.join(case.allergies) or '无'}",
    ]
    if case.key_results:
        lines.append(f"- 关键结果：{'；'.join(case.key_results)}")
    if question:
        lines.append(f"- 会诊目的：{question}")
    team = "、".join(v.label for v in views)
    lines += [
        "",
        f"**组织方式**：{'单科处理' if routing == 'solo' else '多学科团队'}（{team}）；"
        f"讨论 {rounds} 轮；整体置信度 {confidence:.2f}",
        "",
    ]
    for v in views:
        via = PATH_LABELS[v.path] + (f"，通用模型未参与：{v.fallback}" if v.fallback else "")
        lines += [f"## {v.label}（{via}；置信度 {v.confidence:.2f}）", f"参加原因：{v.reason}", ""]
        for o in v.options:
            lines.append(f"- {o.text} —— 依据：{o.basis} [{','.join(o.citations)}]（{o.confidence:.2f}）")
        if not v.options:
            lines.append("- 本科暂无基于证据的建议。")
        lines.append("")
    lines += [
        "## 共识（按置信度加权 Borda 计分）",
        "",
        "| 序号 | 建议 | 得分 | 支持科室 | 证据 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for i, c in enumerate(consensus[:12], start=1):
        lines.append(
            f"| {i} | {c.text} | {c.points:.2f} | {'、'.join(c.supporters)} | {','.join(c.citations)} |"
        )
    lines += ["", "## 用药冲突（知识图谱核查）", ""]
    if conflicts:
        for conflict in conflicts:
            status = conflict.review_status or "—"
            lines.append(f"- ⚠ {conflict.sentence()} —— 来源：{conflict.source}（{status}）")
    else:
        lines.append("- 未发现已知禁忌、相互作用或过敏交叉反应（规则覆盖有限）。")
    lines += ["", "## 证据", ""]
    for e in evidence:
        where = e.citation.label() if e.citation else e.text[:60]
        lines.append(f"- [{e.id}] {where} —— {e.source}")
    return "\n".join(lines)


def sex_text(sex: str) -> str:
    return _SEX.get(sex, sex)


def age_text(age: int | None) -> str:
    return f"{age}岁" if age is not None else "年龄不详"
