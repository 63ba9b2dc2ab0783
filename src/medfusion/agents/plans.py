"""Deterministic plans: what an agent does over its tools when no general model is available. A plan reads
the task the way a rule would — the graph's entity mentions decide which tools are worth calling."""

from __future__ import annotations

from typing import Any

from medfusion.agents.tools import ToolContext


def clinical_plan(task: str, ctx: ToolContext) -> list[tuple[str, dict[str, Any]]]:
    """The cited knowledge answer; the chart when a patient is attached; a symptom-based differential for
    two or more symptoms; a conflict check when drugs are named."""
    mentions = ctx.graph.lexicon.mentions(task)
    symptoms = list(dict.fromkeys(m.entity.name for m in mentions if m.entity.type == "symptom"))
    drugs = list(dict.fromkeys(m.entity.name for m in mentions if m.entity.type in {"drug", "drug_class"}))
    plan: list[tuple[str, dict[str, Any]]] = [("answer_from_knowledge", {"question": task})]
    if ctx.patient_id:
        plan.append(("patient_record", {"section": "summary"}))
    if len(symptoms) >= 2:
        plan.append(("diseases_for_symptoms", {"symptoms": symptoms}))
    if drugs:
        plan.append(("check_conflicts", {"drugs": drugs}))
    return plan
