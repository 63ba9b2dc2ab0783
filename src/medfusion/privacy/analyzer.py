"""Run every recognizer over a text and keep one span per stretch of text.

Overlaps are resolved by entity priority (a checksummed ID number beats a bank-card or date reading of the
same digits; an address beats a name inside it), then length, then score. Works on one document at a time
with compiled regular expressions only — linear in the text, unlike Presidio's engine on large documents.
"""

from __future__ import annotations

from collections.abc import Iterable

from medfusion.privacy.entities import EntityType, Span
from medfusion.privacy.recognizers import Context, Recognizer, default_recognizers
from medfusion.privacy.vocabulary import by_first_character, protected_terms

PRIORITY: dict[EntityType, int] = {
    EntityType.ID_NUMBER: 10,
    EntityType.EMAIL: 9,
    EntityType.URL: 9,
    EntityType.BANK_CARD: 8,
    EntityType.CERTIFICATE: 8,
    EntityType.INSURANCE_ID: 8,
    EntityType.SOCIAL_ID: 8,
    EntityType.HOSPITAL_ID: 7,
    EntityType.PHONE: 7,
    EntityType.IP_ADDRESS: 7,
    EntityType.ADDRESS: 6,
    EntityType.LICENSE_PLATE: 6,
    EntityType.DATE: 5,
    EntityType.AGE: 4,
    EntityType.PERSON: 3,
}


def resolve(spans: Iterable[Span], min_score: float = 0.5) -> list[Span]:
    ranked = sorted(
        (s for s in spans if s.score >= min_score and s.end > s.start),
        key=lambda s: (-PRIORITY[s.type], -(s.end - s.start), -s.score, s.start),
    )
    kept: list[Span] = []
    for span in ranked:
        if not any(span.overlaps(other) for other in kept):
            kept.append(span)
    return sorted(kept)


class Analyzer:
    def __init__(
        self,
        recognizers: list[Recognizer] | None = None,
        *,
        min_score: float = 0.5,
        protected: frozenset[str] | None = None,
    ) -> None:
        self.recognizers = recognizers or default_recognizers()
        self.min_score = min_score
        terms = protected if protected is not None else protected_terms()
        self.context = Context(protected=terms, protected_prefixes=by_first_character(terms))

    def analyze(self, text: str, known_names: Iterable[str] = ()) -> list[Span]:
        ctx = Context(
            known_names=tuple(n for n in known_names if n),
            protected=self.context.protected,
            protected_prefixes=self.context.protected_prefixes,
        )
        found: list[Span] = []
        for recognizer in self.recognizers:
            found.extend(recognizer.find(text, ctx))
        return resolve(found, self.min_score)


_default: Analyzer | None = None


def analyze(text: str, known_names: Iterable[str] = ()) -> list[Span]:
    global _default
    if _default is None:
        _default = Analyzer()
    return _default.analyze(text, known_names)
