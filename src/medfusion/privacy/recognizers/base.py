"""The recognizer interface (shaped like Presidio's: patterns, context words, a validator) and helpers.

Python's ``\\b`` does not separate Chinese characters from digits, so boundaries are look-arounds on the
character classes that matter (DEPENDENCY-FINDINGS: Presidio's ``\\b`` patterns fail on Chinese text).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

from medfusion.privacy.entities import EntityType, Span

NOT_DIGIT_BEFORE = r"(?<![0-9])"
NOT_DIGIT_AFTER = r"(?![0-9])"
NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"


@dataclass
class Context:
    """What the analyzer knows beyond the text: names from the structured record, protected terms."""

    known_names: tuple[str, ...] = ()
    protected: frozenset[str] = field(default_factory=frozenset)
    protected_prefixes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # first char → terms


class Recognizer(ABC):
    name: str = "recognizer"
    entity: EntityType = EntityType.PERSON

    @abstractmethod
    def find(self, text: str, ctx: Context) -> Iterator[Span]:
        """Every candidate span; the analyzer resolves overlaps and thresholds."""

    def span(
        self, text: str, start: int, end: int, score: float = 1.0, entity: EntityType | None = None
    ) -> Span:
        return Span(start, end, entity or self.entity, text[start:end], score, self.name)


def anchored(
    pattern: re.Pattern[str], text: str, anchor: re.Pattern[str], before: int, after: int
) -> Iterator[re.Match[str]]:
    """Run an expensive pattern only in windows around cheap anchor matches (linear time on long text).

    ``pattern`` must be able to match inside ``text[anchor.start() - before : anchor.end() + after]``;
    matches are reported once, in text coordinates.
    """
    seen: set[tuple[int, int]] = set()
    for hit in anchor.finditer(text):
        for match in pattern.finditer(text, max(0, hit.start() - before), min(len(text), hit.end() + after)):
            key = (match.start(), match.end())
            if key not in seen:
                seen.add(key)
                yield match


def preceded_by(text: str, start: int, words: tuple[str, ...], window: int = 12) -> bool:
    before = text[max(0, start - window) : start]
    return any(word in before for word in words)


def followed_by(text: str, end: int, words: tuple[str, ...], window: int = 8) -> bool:
    after = text[end : end + window].lstrip()
    return any(after.startswith(word) for word in words)
