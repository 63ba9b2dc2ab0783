"""MDT minutes as a Word document (多学科会诊纪要 .docx, python-docx): what a hospital files or prints —
title, patient (as the reader's role may see them), participants, each specialty's opinion, the weighted
consensus, the drug conflicts, the warnings, the evidence, the status and the safety sentence.

A value in, bytes out: the page supplies the stored result, the patient line it is allowed to show and the
status; nothing here reads the database."""

from __future__ import annotations

import io

import docx
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Pt

from medfusion.apps.assistive import SAFETY
from medfusion.apps.mdt.minutes import PATH_LABELS, age_text, sex_text
from medfusion.apps.mdt.models import MdtResult

__all__ = ["minutes_docx"]

_FONT = "宋体"  # SimSun: the East Asian face every Chinese Word install has


def _east_asian(style: object, size: float | None = None) -> None:
    font = style.font  # type: ignore[attr-defined]
    font.name = _FONT
    if size:
        font.size = Pt(size)
    rpr = style.element.get_or_add_rPr()  # type: ignore[attr-defined]
    rpr.get_or_add_rFonts().set(qn("w:eastAsia"), _FONT)


def _table(document: object, header: list[str], rows: list[list[str]]) -> None:
    table = document.add_table(rows=1, cols=len(header))  # type: ignore[attr-defined]
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.text = text
        for run in cell.paragraphs[0].runs:
            run.bold = True
    for values in rows:
        cells = table.add_row().cells
        for cell, text in zip(cells, values, strict=True):
            cell.text = text


def minutes_docx(result: MdtResult, patient: str, status: str, when: str) -> bytes:
    """The document's bytes. ``patient``: the name as the reader's role may see it; ``status``: the stored
    run's status in words (待医生确认 until a clinician acts); ``when``: the time it ran, as pages show it
    (display zone, with the zone)."""
    document = docx.Document()
    for name in ("Normal", "Title", "Heading 1", "Heading 2"):
        _east_asian(document.styles[name], 10.5 if name == "Normal" else None)
    document.add_heading("多学科会诊纪要", level=0)
    lead = document.add_paragraph()
    lead.add_run(f"状态：{status}").bold = True
    lead.add_run(f"    会诊编号：{result.run_id}    时间：{when}")
    case = result.case
    document.add_heading("患者", level=1)
    document.add_paragraph(f"{patient}（{case.patient_id}），{sex_text(case.sex)}，{age_text(case.age)}")
    diagnoses = "；".join(f"{d.name}（{d.icd10}）{'，主要诊断' if d.primary else ''}" for d in case.diagnoses)
    document.add_paragraph(f"诊断：{diagnoses or '无'}")
    document.add_paragraph(
        f"在用药物：{'、'.join(case.medications) or '无'}；过敏：{'、'.join(case.allergies) or '无'}"
    )
    if case.key_results:
        document.add_paragraph(f"关键结果：{'；'.join(case.key_results)}")
    document.add_heading("参会科室", level=1)
    document.add_paragraph(
        f"组织方式：{'单科处理' if result.routing == 'solo' else '多学科团队'}；讨论 {result.rounds} 轮；"
        f"整体置信度 {result.confidence.value:.2f}；路径：{PATH_LABELS[result.provenance.path]}"
    )
    _table(
        document,
        ["科室", "参加原因", "路径", "置信度"],
        [
            [
                v.label,
                v.reason,
                PATH_LABELS[v.path] + (f"（通用模型未参与：{v.fallback.value}）" if v.fallback else ""),
                f"{v.confidence:.2f}",
            ]
            for v in result.specialties
        ],
    )
    document.add_heading("各科意见", level=1)
    for v in result.specialties:
        document.add_heading(f"{v.label}（置信度 {v.confidence:.2f}）", level=2)
        if not v.options:
            document.add_paragraph("本科暂无基于证据的建议。", style="List Bullet")
        for o in v.options:
            document.add_paragraph(
                f"{o.text} —— 依据：{o.basis} [{','.join(o.citations)}]（{o.confidence:.2f}）",
                style="List Bullet",
            )
    document.add_heading("共识（按置信度加权 Borda 计分）", level=1)
    _table(
        document,
        ["序号", "建议", "加权得分", "支持科室", "证据"],
        [
            [str(i), c.text, f"{c.points:.2f}", "、".join(c.supporters), ",".join(c.citations)]
            for i, c in enumerate(result.consensus, start=1)
        ],
    )
    document.add_heading("用药冲突（知识图谱核查）", level=1)
    if not result.conflicts:
        document.add_paragraph("未发现已知禁忌、相互作用或过敏交叉反应（规则覆盖有限）。")
    for conflict in result.conflicts:
        document.add_paragraph(
            f"{conflict.sentence()} —— 来源：{conflict.source}（{conflict.review_status or '—'}）",
            style="List Bullet",
        )
    if result.warnings:
        document.add_heading("警示", level=1)
        for w in result.warnings:
            document.add_paragraph(f"[{w.code.value}] {w.message}", style="List Bullet")
    document.add_heading("证据", level=1)
    for e in result.evidence:
        where = e.citation.label() if e.citation else e.text[:80]
        document.add_paragraph(f"[{e.id}] {where} —— {e.source}", style="List Bullet")
    closing = document.add_paragraph()
    closing.alignment = WD_ALIGN_PARAGRAPH.LEFT
    closing.add_run(f"状态：{status}。").bold = True
    closing.add_run(SAFETY)
    document.add_paragraph("主持医生签名：________________    日期：________________")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
