"""Hallucination rate: the claims in a response (numbers with units, doses, drugs, diagnoses) that neither
the prompt nor the evidence supports, read by the guardrails' own claim reader
(:mod:`medfusion.agents.guardrails.grounding`) on the **final** output a user would see.

A cited answer is checked against the evidence each sentence cites; a bare model cites nothing, so what the
knowledge base returns for the prompt is its evidence — "cited answering with vs without retrieval" is then
the same number for both."""

from __future__ import annotations

from medfusion.agents.drafting import split_cited
from medfusion.agents.guardrails.grounding import Grounder, check_grounding
from medfusion.agents.guardrails.safety import vetted_texts
from medfusion.graph import Graph
from medfusion.knowledge.base import KnowledgeBase


class ClaimCheck:
    def __init__(self, graph: Graph, kb: KnowledgeBase | None = None) -> None:
        self.grounder = Grounder(graph)
        self.kb = kb

    def count(self, prompt: str, output: str, evidence: dict[str, str] | None = None) -> tuple[int, int]:
        """(claims checked, claims unsupported) in ``output``; ``evidence`` is id → text of what it cites."""
        sentences = split_cited(output)
        if evidence is None:
            hits = self.kb.search(prompt, k=5) if self.kb else []
            evidence = {f"K{n}": h.text for n, h in enumerate(hits, start=1)}
            pairs = [(s.text, list(evidence)) for s in sentences]
        else:
            pairs = [(s.text, s.citations) for s in sentences]
        result = check_grounding(self.grounder, pairs, [prompt, *vetted_texts()], evidence, strict=True)
        return result.claims_checked, sum(f.code != "miscited" for f in result.findings)
