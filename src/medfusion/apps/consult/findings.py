"""Findings from a chief complaint: the graph's symptom mentions, each marked present or absent.

Negation follows the NegEx idea (Chapman et al., J Biomed Inform 2001;34:301-10) adapted to Chinese clinical
writing: a cue (无, 否认, 未, 没有, 不伴, 未见) opening the clause a finding sits in negates it, until a
clause break or a contrast (但, 伴有). Terms the graph does not know exactly are matched to a graph symptom
that contains them or that they contain (鼻涕 → 流鼻涕), so a patient's own words still count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from medfusion.graph import Graph
from medfusion.graph.model import EntityType

_NEGATION = re.compile(r"(无|否认|未|没有|不伴|未见|并无|不)")
# 有 opens a new (affirmed) clause, except inside the cue 没有 itself
_BREAK = re.compile(r"[，。；;,.!?！？\n]|但|伴有|出现|(?<!没)有")


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


def parse(graph: Graph, text: str) -> Findings:
    found = Findings()
    for m in graph.lexicon.mentions(text):
        if m.entity.type != "symptom":
            continue
        target = found.absent if _negated(text, m.start) else found.present
        if m.entity.name not in target:
            target.append(m.entity.name)
    found.absent = [a for a in found.absent if a not in found.present]
    return found


def from_terms(graph: Graph, present: list[str], absent: list[str]) -> Findings:
    """Structured findings (e.g. a form or a dataset's slots) → graph symptom names (exact or synonym first,
    then containment: :meth:`medfusion.graph.lexicon.Lexicon.resolve_term`)."""
    found = Findings()
    for terms, target in ((present, found.present), (absent, found.absent)):
        for term in terms:
            entity = graph.lexicon.resolve_term(EntityType.symptom, term, containment=True)
            if entity is None:
                found.unmatched.append(term)
            elif entity.name not in target:
                target.append(entity.name)
    found.absent = [a for a in found.absent if a not in found.present]
    return found
