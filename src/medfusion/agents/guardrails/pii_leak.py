"""PII-leak check on generated text: an identifier (name, ID number, phone, address, record number …) that
appears in the output but in none of the texts the answer was allowed to use — the asker's input and the
evidence — is redacted to its type tag (``[电话]``) and reported by type only. A model that echoes a
pseudonym map, invents a patient's phone number, or leaks another patient's name from its context is caught
here; identifiers the asker supplied may be repeated back to them."""

from __future__ import annotations

from collections.abc import Sequence

from medfusion.agents.guardrails.findings import Action, Check, Finding
from medfusion.privacy.analyzer import Analyzer
from medfusion.privacy.entities import TAGS, EntityType

# a date or an age that is in no input is a grounding matter (numbers), not an identifier leak
_NOT_LEAKS = {EntityType.DATE, EntityType.AGE}


class LeakCheck:
    def __init__(self, analyzer: Analyzer | None = None) -> None:
        self.analyzer = analyzer or Analyzer()

    def check(self, text: str, allowed: Sequence[str], index: int | None = None) -> tuple[str, list[Finding]]:
        allowed_text = "\n".join(allowed)
        findings: list[Finding] = []
        out, position = [], 0
        for span in self.analyzer.analyze(text):
            if span.type in _NOT_LEAKS or span.text in allowed_text:
                continue
            out.append(text[position : span.start])
            out.append(TAGS[span.type])
            position = span.end
            findings.append(
                Finding(
                    check=Check.pii,
                    code="pii_leak",
                    action=Action.redacted,
                    detail=span.type.value,
                    sentence=index,
                )
            )
        out.append(text[position:])
        return "".join(out), findings
