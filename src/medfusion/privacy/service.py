"""De-identify texts and whole patient records: the analyzer finds identifiers, an operator replaces them.

A :class:`Deidentifier` holds one project's settings (mode, key). In ``pseudo`` mode the same identifier
gets the same surrogate everywhere; a :class:`ReversibleSession` also remembers surrogate → original so text
sent to an external model can be mapped back when the answer returns (the key and the mapping stay inside the
hospital; only surrogates leave).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from medfusion import __version__
from medfusion.privacy.analyzer import Analyzer
from medfusion.privacy.entities import EntityType, Span
from medfusion.privacy.operators import Mode, apply
from medfusion.privacy.pseudonyms import Pseudonymizer

ENGINE = f"medfusion.privacy/{__version__}"


class DeidText(BaseModel):
    text: str
    counts: dict[str, int]
    mode: Mode
    provenance: dict[str, str] = {"path": "specialist", "engine": ENGINE}


class Deidentifier:
    def __init__(
        self, mode: Mode | str = Mode.tag, key: bytes | None = None, analyzer: Analyzer | None = None
    ) -> None:
        self.mode = Mode(mode)
        if self.mode is Mode.pseudo and key is None:
            raise ValueError("pseudo mode needs a key")
        self.pseudonymizer = Pseudonymizer(key) if key is not None else None
        self.analyzer = analyzer or Analyzer()

    def spans(self, text: str, known_names: Iterable[str] = ()) -> list[Span]:
        return self.analyzer.analyze(text, known_names)

    def text(self, text: str, known_names: Iterable[str] = (), subject: str | None = None) -> DeidText:
        """``subject`` (a patient id) fixes the date offset, so one patient's dates move together."""
        spans = self.spans(text, known_names)
        offset = self.pseudonymizer.date_offset(subject or "") if self.pseudonymizer else 0
        rewritten, _ = apply(text, spans, self.mode, self.pseudonymizer, offset)
        return DeidText(text=rewritten, counts=dict(Counter(s.type.value for s in spans)), mode=self.mode)


class ReversibleSession:
    """Pseudonymise outgoing text and restore the answer; the mapping never leaves this object."""

    def __init__(self, key: bytes, analyzer: Analyzer | None = None) -> None:
        self.pseudonymizer = Pseudonymizer(key)
        self.analyzer = analyzer or Analyzer()
        self.mapping: dict[str, str] = {}

    def protect(self, text: str, known_names: Iterable[str] = (), subject: str | None = None) -> str:
        spans = self.analyzer.analyze(text, known_names)
        offset = self.pseudonymizer.date_offset(subject or "")
        rewritten, done = apply(text, spans, Mode.pseudo, self.pseudonymizer, offset)
        for span, surrogate in done:
            if span.type is not EntityType.AGE:  # 90岁以上 is a generalisation, not a reversible surrogate
                self.mapping[surrogate] = span.text
        return rewritten

    def restore(self, text: str) -> str:
        for surrogate in sorted(self.mapping, key=len, reverse=True):
            text = text.replace(surrogate, self.mapping[surrogate])
        return text


_tagger: Deidentifier | None = None


def tag_identifiers(text: str, known_names: Sequence[str] = ()) -> str:
    """``text`` with every detected identifier replaced by its type tag (``[姓名]`` …): the display policy's
    ``redact`` rule for notes shown to roles that get de-identified data (``store/display_policy.toml``)."""
    global _tagger
    if _tagger is None:
        _tagger = Deidentifier(Mode.tag)
    return _tagger.text(text, known_names).text
