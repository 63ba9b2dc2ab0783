"""Person names with no cue word (王秀英今天来复查, 主诉由王秀英本人提供): a surname, then given-name
characters that a name model (``data/name_model.toml``, sources there) accepts, at a word boundary, with
the do-not-touch vocabulary (herbs, drugs, diseases, places) vetoing any candidate a protected term starts
inside.

The model is a character set, not a statistical tagger: a three-character name needs both given characters in
the set; a two-character name must be a common name (the 2019 national name report's top ten) or one the
record knows. Names the record knows also teach the set their given characters, so a chart's own patient and
the names in the store raise recall on that chart. Scores sit below the cue-based rules (``names.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from medfusion import packaged
from medfusion.privacy.entities import EntityType, Span
from medfusion.privacy.recognizers.base import Context, Recognizer
from medfusion.privacy.recognizers.names import SINGLE_SURNAMES, STOP_CHARACTERS
from medfusion.record.surnames import COMPOUND_SURNAMES, split_name

SCORE = 0.6


@dataclass(frozen=True)
class NameModel:
    given_chars: frozenset[str]
    common_names: frozenset[str]
    before: frozenset[str]


@lru_cache(maxsize=1)
def name_model() -> NameModel:
    data = packaged.toml("medfusion.privacy", "data", "name_model.toml")
    return NameModel(
        given_chars=frozenset("".join(str(data["given_chars"]).split())) - STOP_CHARACTERS,
        common_names=frozenset(data["common_names"]),
        before=frozenset(data["before"]),
    )


def _cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fa5"


class CuelessNameRecognizer(Recognizer):
    name = "person_cueless"
    entity = EntityType.PERSON

    def __init__(self, model: NameModel | None = None) -> None:
        self.model = model or name_model()

    def _protected_inside(self, text: str, start: int, end: int, ctx: Context) -> bool:
        """A protected term starts somewhere in the candidate (麦冬清…, 金银花, 连花清瘟)."""
        return any(
            text.startswith(term, position)
            for position in range(start, end)
            for term in ctx.protected_prefixes.get(text[position], ())
        )

    def _surname_at(self, text: str, i: int) -> int:
        """The surname's length at ``i`` (2 for 欧阳, 1 for 王), or 0."""
        if text[i : i + 2] in COMPOUND_SURNAMES:
            return 2
        return 1 if text[i] in SINGLE_SURNAMES else 0

    def find(self, text: str, ctx: Context) -> Iterator[Span]:
        model = self.model
        known = {n for n in ctx.known_names if len(n) >= 2}
        given = model.given_chars | {ch for n in known for ch in split_name(n)[1] if _cjk(ch)}
        two_char = model.common_names | {n for n in known if len(n) == 2}
        i = 0
        n = len(text)
        while i < n:  # a digit before is a count or a unit (化疗7程顺利), not a boundary
            s = self._surname_at(text, i)
            previous = text[i - 1] if i else ""
            if not s or previous.isdigit() or (_cjk(previous) and previous not in model.before):
                i += 1
                continue
            end = None
            g1, g2 = i + s, i + s + 1
            if g2 < n and text[g1] in given and text[g2] in given:
                end = g2 + 1
            elif g1 < n and text[i : g1 + 1] in two_char:
                end = g1 + 1
            if end is not None and not self._protected_inside(text, i, end, ctx):
                yield self.span(text, i, end, SCORE)
                i = end
                continue
            i += 1
