"""Findings from a chief complaint: the graph's symptom mentions, each marked present or absent.

Negation follows the NegEx idea (Chapman et al., J Biomed Inform 2001;34:301-10) adapted to Chinese clinical
writing: a cue (无, 否认, 未, 没有, 不伴, 未见) opening the clause a finding sits in negates it, until a
clause break or a contrast (但, 伴有). Terms the graph does not know exactly are matched to a graph symptom
that contains them or that they contain (鼻涕 → 流鼻涕), so a patient's own words still count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from medfusion.graph.store import GraphStore

_NEGATION = re.compile(r"(无|否认|未|没有|不伴|未见|并无|不)")
_BREAK = re.compile(r"[，。；;,.!?！？\n]|但|伴有|出现|有")


@dataclass
class Findings:
    present: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # words given as findings that no graph symptom covers


def _negated(text: str, start: int) -> bool:
    clause_start = 0
    for m in _BREAK.finditer(text, 0, start):
        clause_start = m.end()
    return bool(_NEGATION.search(text[clause_start:start]))


def symptom_names(graph: GraphStore) -> list[str]:
    return sorted(
        {name for name, entities in graph.lexicon().items() for e in entities if e.type == "symptom"}, key=len
    )


def match_term(graph: GraphStore, term: str, known: list[str] | None = None) -> str | None:
    """A symptom term → the graph's preferred symptom name: exact/synonym first, then containment."""
    term = term.strip()
    if not term:
        return None
    resolved = [e for e in graph.resolve(term) if e.type == "symptom"]
    if resolved:
        return resolved[0].name
    names = known if known is not None else symptom_names(graph)
    inside = [n for n in names if term in n]
    if inside:
        resolved = [e for e in graph.resolve(inside[0]) if e.type == "symptom"]
        return resolved[0].name if resolved else inside[0]
    around = [n for n in reversed(names) if len(n) >= 2 and n in term]
    if around:
        resolved = [e for e in graph.resolve(around[0]) if e.type == "symptom"]
        return resolved[0].name if resolved else around[0]
    return None


def parse(graph: GraphStore, text: str) -> Findings:
    found = Findings()
    for m in graph.mentions(text):
        if m.entity.type != "symptom":
            continue
        target = found.absent if _negated(text, m.start) else found.present
        if m.entity.name not in target:
            target.append(m.entity.name)
    found.absent = [a for a in found.absent if a not in found.present]
    return found


def from_terms(
    graph: GraphStore, present: list[str], absent: list[str], names: list[str] | None = None
) -> Findings:
    """Structured findings (e.g. a form or a dataset's slots) → graph symptom names; ``names`` is the graph's
    symptom list when the caller already has it."""
    names = names if names is not None else symptom_names(graph)
    found = Findings()
    for terms, target in ((present, found.present), (absent, found.absent)):
        for term in terms:
            name = match_term(graph, term, names)
            if name is None:
                found.unmatched.append(term)
            elif name not in target:
                target.append(name)
    found.absent = [a for a in found.absent if a not in found.present]
    return found
