"""Consensus by Borda count weighted by confidence (Med-Go MDT case: "Borda + 置信度共识"; Borda 1781).

Each specialty ranks its own options; an option in place r of n earns (n − r) points, multiplied by the
specialty's confidence, so a sure specialist's first choice outweighs an unsure one's. Options that several
specialties propose (the same key: the same drug, check or treatment) add up, which is what a team agreeing
looks like. Ties break by how many specialties support the option."""

from __future__ import annotations

from collections import defaultdict

from medfusion.apps.mdt.models import ConsensusItem, SpecialtyView


def borda(views: list[SpecialtyView]) -> list[ConsensusItem]:
    points: dict[str, float] = defaultdict(float)
    supporters: dict[str, list[str]] = defaultdict(list)
    first: dict[str, tuple[str, list[str]]] = {}
    for view in views:
        n = len(view.options)
        for rank, option in enumerate(view.options):
            points[option.key] += (n - rank) * view.confidence
            if view.label not in supporters[option.key]:
                supporters[option.key].append(view.label)
            text, citations = first.get(option.key, (option.text, []))
            first[option.key] = (text, list(dict.fromkeys([*citations, *option.citations])))
    ordered = sorted(points, key=lambda k: (-points[k], -len(supporters[k]), k))
    return [
        ConsensusItem(
            key=k,
            text=first[k][0],
            points=round(points[k], 3),
            supporters=supporters[k],
            citations=first[k][1],
        )
        for k in ordered
    ]
