"""Red flags (急症信号): which emergency signs a text names, at which triage level, and what to tell the
reader.

One lexicon for every caller — the guardrails (a refusal still carries the emergency advice), ``ask``,
``consult`` and, later, triage, which extends it. The knowledge is data (``red_flags.toml``): each flag has
a code, a level on the four-level scale of 《急诊预检分诊专家共识》 (中华急诊医学杂志 2018;27(6):599-604),
an advice key, its source, and lay and clinical patterns; a flag may need a second finding (``with``: chest
pain *with* sweating or radiation). Matching is negation-aware in the NegEx manner (Chapman et al. 2001): a
cue (无, 否认, 未见, 没有, 不伴 …) between the start of the clause and the words negates them, so "无胸痛、
大汗" raises nothing. The whole lexicon is ``draft — pending clinician review``.

Pure functions of text: no database, no I/O beyond reading the packaged data file once.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from medfusion import packaged

Level = Literal[1, 2, 3, 4]
LEVELS: dict[int, str] = {1: "濒危", 2: "危重", 3: "急症", 4: "非急症"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Meta(_Strict):
    name: str
    version: str
    review_status: str
    primary_source: str


class Negation(_Strict):
    cues: str
    terminators: str
    pseudo: str


class Advice(_Strict):
    zh: str
    en: str


class FlagSpec(_Strict):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    level: Level
    advice: str
    source: str
    any: list[str] = Field(min_length=1)
    with_: list[str] = Field(default_factory=list, alias="with")


class Lexicon(_Strict):
    meta: Meta
    negation: Negation
    advice: dict[str, Advice]
    flag: list[FlagSpec] = Field(min_length=1)


class RedFlag(_Strict):
    """One emergency sign found in a text."""

    code: str
    label: str
    level: Level
    advice: str  # the advice key (call_120, poisoning, gas, crisis, emergency_department …)
    advice_zh: str
    advice_en: str
    words: str  # the words that raised it
    source: str

    @property
    def urgent(self) -> bool:
        """Levels 1–2 (濒危, 危重): the reader is told to call 120 now."""
        return self.level <= 2


@dataclass(frozen=True)
class _Compiled:
    spec: FlagSpec
    any: tuple[re.Pattern[str], ...]
    with_: tuple[re.Pattern[str], ...]


@dataclass(frozen=True)
class _Engine:
    lexicon: Lexicon
    flags: tuple[_Compiled, ...]
    cue: re.Pattern[str]
    terminator: re.Pattern[str]
    pseudo: re.Pattern[str]


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def load(raw: dict[str, object]) -> Lexicon:
    """A lexicon from its TOML table, schema-checked (unknown keys, bad levels, unknown advice keys and
    patterns that do not compile are errors)."""
    lexicon = Lexicon.model_validate(raw)
    for spec in lexicon.flag:
        if spec.advice not in lexicon.advice:
            raise ValueError(f"red flag {spec.code}: unknown advice {spec.advice!r}")
        for pattern in [*spec.any, *spec.with_]:
            _compile(pattern)
    codes = [spec.code for spec in lexicon.flag]
    if len(codes) != len(set(codes)):
        raise ValueError("red flag codes must be unique")
    return lexicon


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    return _engine().lexicon


@lru_cache(maxsize=1)
def _engine() -> _Engine:
    lex = load(packaged.toml("medfusion.specialists", "red_flags.toml"))
    return _Engine(
        lexicon=lex,
        flags=tuple(
            _Compiled(s, tuple(map(_compile, s.any)), tuple(map(_compile, s.with_))) for s in lex.flag
        ),
        cue=_compile(lex.negation.cues),
        terminator=_compile(lex.negation.terminators),
        pseudo=_compile(lex.negation.pseudo),
    )


# NFKC turns ，？！；： into ASCII; the patterns bound clauses with the Chinese marks, so map them back
_CLAUSE_MARKS = str.maketrans({",": "，", "?": "？", "!": "！", ";": "；", ":": "："})


def normalise(text: str) -> str:
    """Full-width letters and digits → ASCII (NFKC: ３８℃ = 38℃), clause marks kept Chinese."""
    return unicodedata.normalize("NFKC", text).translate(_CLAUSE_MARKS)


def negated(text: str, start: int) -> bool:
    """Whether a negation cue governs the words starting at ``start``: a cue between the last clause break
    (punctuation or a terminator such as 但 / 伴 / 出现) and the words, pseudo-negations ignored."""
    engine = _engine()
    clause_start = 0
    for m in engine.terminator.finditer(text, 0, start):
        clause_start = m.end()
    window = engine.pseudo.sub(lambda m: "#" * len(m.group()), text[clause_start:start])
    return bool(engine.cue.search(window))


def _affirmed(patterns: tuple[re.Pattern[str], ...], text: str) -> str | None:
    for pattern in patterns:
        for m in pattern.finditer(text):
            if m.group() and not negated(text, m.start()):
                return m.group()
    return None


def detect(text: str) -> list[RedFlag]:
    """Every flag the text affirms, most urgent first (then in lexicon order); one entry per flag."""
    engine = _engine()
    text = normalise(text)
    found: list[RedFlag] = []
    for flag in engine.flags:
        words = _affirmed(flag.any, text)
        if words is None or (flag.with_ and _affirmed(flag.with_, text) is None):
            continue
        spec, advice = flag.spec, engine.lexicon.advice[flag.spec.advice]
        found.append(
            RedFlag(
                code=spec.code,
                label=spec.label,
                level=spec.level,
                advice=spec.advice,
                advice_zh=advice.zh,
                advice_en=advice.en,
                words=words,
                source=spec.source,
            )
        )
    return sorted(found, key=lambda f: f.level)  # stable: lexicon order within a level


def _shown(flags: list[RedFlag]) -> list[RedFlag]:
    """With an urgent flag (levels 1–2) present, the lesser ones (急性胸痛 beside 胸痛伴大汗) add nothing."""
    urgent = [f for f in flags if f.urgent]
    return urgent or flags


def advice_text(flags: list[RedFlag], lang: Literal["zh", "en"] = "zh") -> str:
    """The flags' advice as one text, each advice once: the crisis line first when a flag asks for it (a
    person in crisis reads that before anything else), then specific advice (poisoning, gas) before the
    generic "call 120", which is left out when a specific advice already says it."""
    ordered = sorted(_shown(flags), key=lambda f: (f.advice != "crisis", f.advice == "call_120", f.level))
    seen: dict[str, str] = {}
    for flag in ordered:
        seen.setdefault(flag.advice, flag.advice_zh if lang == "zh" else flag.advice_en)
    if len(seen) > 1 and any("120" in text for key, text in seen.items() if key != "call_120"):
        seen.pop("call_120", None)  # the specific advice (poisoning, gas, crisis) already says to call 120
    return "".join(seen.values()) if lang == "zh" else " ".join(seen.values())


def summary(flags: list[RedFlag]) -> str:
    """``胸痛伴出汗或放射痛（危重）、卒中征象（BE-FAST）（危重）`` — what the warning names."""
    return "、".join(f"{f.label}（{LEVELS[f.level]}）" for f in _shown(flags))
