"""Who sits on the MDT, and whether one agent is enough (adaptive complexity, as MDAgents — Kim et al.,
NeurIPS 2024 — routes simple questions to one agent and complex ones to a team).

Complexity = specialties the case calls for + active diagnoses beyond the first + 2 × graph conflicts.
At most ``SOLO_MAX`` (2) the case goes to one agent — the single matching specialty, or general practice;
above it, the whole matching team."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from medfusion import packaged
from medfusion.apps.mdt.models import MdtCase

SOLO_MAX = 2


@lru_cache(maxsize=1)
def pool() -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = packaged.toml("medfusion.apps.mdt", "specialties.toml")["specialty"]
    return table


def _why(spec: dict[str, Any], case: MdtCase, medications: list[str]) -> str | None:
    for d in case.diagnoses:
        if any(d.icd10.upper().startswith(p) for p in spec.get("icd10", [])):
            return f"诊断 {d.name}（{d.icd10}）"
        if any(k in d.name for k in spec.get("keywords", [])):
            return f"诊断 {d.name}"
    for drug in medications:
        if any(name in drug for name in spec.get("drugs", [])):
            return f"用药 {drug}"
    if spec.get("min_medications") and len(case.medications) >= int(spec["min_medications"]):
        return f"在用药物 {len(case.medications)} 种"
    return None


def _chosen_reason(why: str | None) -> str:
    return f"主持医生指定（{why}）" if why else "主持医生指定"


def select(
    case: MdtCase, conflicts: int, proposed_drugs: list[str], chosen: list[str] | None = None
) -> tuple[dict[str, str], str, int]:
    """(specialty → why it joins, routing, complexity). ``chosen``: the specialties the chairing clinician
    named — exactly those sit, each with the case's reason where it has one; one named specialty is a
    solo consultation."""
    table = pool()
    medications = [*case.medications, *proposed_drugs]
    if chosen:
        named = {k: _chosen_reason(_why(table[k], case, medications)) for k in dict.fromkeys(chosen)}
        complexity = len(named) + max(len(case.diagnoses) - 1, 0) + 2 * conflicts
        return named, "solo" if len(named) == 1 else "team", complexity
    team: dict[str, str] = {}
    for name, spec in table.items():
        reason = _why(spec, case, medications)
        if reason:
            team[name] = reason
    for name, spec in table.items():
        partners = [p for p in spec.get("always_with", []) if p in team]
        if partners and name not in team:
            team[name] = f"随{table[partners[0]]['label']}参加"
    if conflicts and "clinical_pharmacy" not in team:
        team["clinical_pharmacy"] = f"图谱发现 {conflicts} 处用药冲突"
    complexity = len(team) + max(len(case.diagnoses) - 1, 0) + 2 * conflicts
    if complexity <= SOLO_MAX:
        solo = next(iter(team), "general_practice")
        return {solo: team.get(solo, "单一问题，由全科统筹")}, "solo", complexity
    return team, "team", complexity


def unknown(keys: list[str]) -> list[str]:
    """The names in ``keys`` that are no specialty of the pool."""
    return [k for k in keys if k not in pool()]
