"""Conversation memory as the 医健助手 case describes it (chapter 3, 一.(一) case 3): every N turns (20 by
default) the recent turns are summarised into structured (time, event, case, person) entries — 时间-事件-
病例-人物 — stored per owner and recalled across sessions by relevance to the new message. Recall weight
decays with the time since an entry was last used (half-life 30 days), and using an entry refreshes it.
"Anti-fragile" retention: unusual entries — allergies, adverse reactions, red-flag events, things the
knowledge graph does not know — decay three times slower, so the rare fact that matters is not forgotten.

With a general model the summary is the model's structured output (``memory_summary`` prompt, validated);
without one, a rule summariser extracts the same four fields: time expressions, person words, and the
graph's entity mentions as the case. Every entry records which path wrote it.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from pydantic import BaseModel, Field
from sqlalchemy import delete, select, update

from medfusion.graph import Graph
from medfusion.knowledge import tokens
from medfusion.llm import GeneralModel, Message, Unavailable, prompt
from medfusion.store.database import Database
from medfusion.store.tables import AgentMemoryRow, AgentTurnRow

EVERY_TURNS = 20
HALF_LIFE_DAYS = 30.0
UNUSUAL_SLOWDOWN = 3.0
_TIME = re.compile(
    r"(\d{4}年(?:\d{1,2}月(?:\d{1,2}日)?)?|\d{1,2}月\d{1,2}日|今天|昨天|前天|今早|昨晚|刚才|最近|上周|上个月|去年"
    r"|\d+\s*(?:天|周|个月|年|小时)(?:前|以来)?)"
)
_PERSON = re.compile(
    r"(我妈|我爸|母亲|父亲|妈妈|爸爸|孩子|儿子|女儿|老伴|妻子|丈夫|爱人|爷爷|奶奶|外公|外婆|宝宝)"
)
_UNUSUAL = re.compile(r"(过敏|不良反应|副作用|皮疹|休克|昏迷|抽搐|胸痛|呼吸困难|意识不清|大出血|住院|抢救)")
_CASE_TYPES = {"disease", "symptom", "drug", "drug_class", "check"}


class MemoryEntry(BaseModel):
    id: int | None = None
    time: str = Field(default="", max_length=60)
    event: str = Field(min_length=1, max_length=500)
    case: str = Field(default="", max_length=200)
    person: str = Field(default="本人", max_length=60)
    unusual: bool = False
    source: str = "rules"  # rules | llm
    weight: float | None = None  # recall: decay × relevance

    def line(self) -> str:
        return f"{self.time or '时间不详'}｜{self.person}｜{self.event}｜{self.case}"


class _Summary(BaseModel):
    entries: list[MemoryEntry] = Field(max_length=40)


class Turn(BaseModel):
    role: str
    text: str


def decay(last_used: datetime, now: datetime, unusual: bool) -> float:
    half_life = HALF_LIFE_DAYS * (UNUSUAL_SLOWDOWN if unusual else 1.0)
    days = max((now - last_used).total_seconds(), 0.0) / 86400
    return math.exp(-math.log(2) * days / half_life)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class RuleSummariser:
    """One entry per user turn that mentions something clinical."""

    def __init__(self, graph: Graph | None) -> None:
        self.graph = graph

    def summarise(self, turns: list[Turn]) -> list[MemoryEntry]:
        entries = []
        for turn in turns:
            if turn.role != "user":
                continue
            mentions = self.graph.lexicon.mentions(turn.text) if self.graph else []
            cases = list(dict.fromkeys(m.entity.name for m in mentions if m.entity.type in _CASE_TYPES))
            unusual = bool(_UNUSUAL.search(turn.text))
            if not cases and not unusual:
                continue
            time = _TIME.search(turn.text)
            person = _PERSON.search(turn.text)
            first = mentions[0].start if mentions else 0
            clause = re.split(r"[，。！？；,.!?;]", turn.text[first:])[0] if mentions else turn.text
            entries.append(
                MemoryEntry(
                    time=time.group() if time else "",
                    event=clause.strip()[:200] or turn.text[:200],
                    case="、".join(cases)[:200],
                    person=person.group() if person else "本人",
                    unusual=unusual,
                    source="rules",
                )
            )
        return entries


class Memory:
    def __init__(
        self,
        db: Database,
        general: GeneralModel | None = None,
        graph: Graph | None = None,
        every: int = EVERY_TURNS,
    ) -> None:
        self.db = db
        self.general = general
        self.rules = RuleSummariser(graph)
        self.every = every

    def add_turn(
        self, owner: str, session_id: str, role: str, text: str, now: datetime | None = None
    ) -> list[MemoryEntry]:
        """Store a turn; when ``every`` turns are waiting, summarise them into memory entries."""
        now = now or datetime.now(UTC)
        with self.db.session() as session:
            session.add(AgentTurnRow(owner=owner, session_id=session_id, role=role, text=text, at=now))
        return self.summarise(owner, session_id, now=now, force=False)

    def summarise(
        self, owner: str, session_id: str, now: datetime | None = None, force: bool = True
    ) -> list[MemoryEntry]:
        now = now or datetime.now(UTC)
        with self.db.session() as session:
            rows = session.scalars(
                select(AgentTurnRow)
                .where(
                    AgentTurnRow.owner == owner,
                    AgentTurnRow.session_id == session_id,
                    AgentTurnRow.summarised.is_(False),
                )
                .order_by(AgentTurnRow.id)
            ).all()
            if not rows or (not force and len(rows) < self.every):
                return []
            turns = [Turn(role=r.role, text=r.text) for r in rows]
            ids = [r.id for r in rows]
        entries = self._summarise(turns)
        with self.db.session() as session:
            for e in entries:
                session.add(
                    AgentMemoryRow(
                        owner=owner,
                        session_id=session_id,
                        time_text=e.time[:60],
                        event=e.event,
                        case_text=e.case[:200],
                        person=e.person[:60],
                        created_at=now,
                        last_used_at=now,
                        uses=0,
                        unusual=e.unusual,
                        source=e.source,
                    )
                )
            session.execute(update(AgentTurnRow).where(AgentTurnRow.id.in_(ids)).values(summarised=True))
        return entries

    def _summarise(self, turns: list[Turn]) -> list[MemoryEntry]:
        if self.general is not None and self.general.available:
            messages: list[Message] = prompt("memory_summary").render(turns=turns)
            result = self.general.structured(messages, _Summary, purpose="memory_summary")
            if not isinstance(result, Unavailable):
                entries = [e.model_copy(update={"source": "llm"}) for e in result.value.entries]
                # the model's summary keeps what the rules would flag as unusual
                flagged = {e.case for e in self.rules.summarise(turns) if e.unusual}
                return [e.model_copy(update={"unusual": e.unusual or e.case in flagged}) for e in entries]
        return self.rules.summarise(turns)

    def recall(self, owner: str, query: str, k: int = 5, now: datetime | None = None) -> list[MemoryEntry]:
        """The owner's entries ranked by relevance to ``query`` × decay; the recalled ones are refreshed."""
        now = now or datetime.now(UTC)
        wanted = set(tokens.bigrams(query))
        with self.db.session() as session:
            rows = session.scalars(select(AgentMemoryRow).where(AgentMemoryRow.owner == owner)).all()
            scored = []
            for r in rows:
                words = set(tokens.bigrams(f"{r.event} {r.case_text} {r.person}"))
                relevance = len(wanted & words) / max(len(wanted), 1) if wanted else 0.0
                weight = decay(_aware(r.last_used_at), now, r.unusual) * (0.1 + relevance)
                if relevance > 0 or not wanted:
                    scored.append((weight, r))
            scored.sort(key=lambda item: -item[0])
            chosen = scored[:k]
            if chosen:
                session.execute(
                    update(AgentMemoryRow)
                    .where(AgentMemoryRow.id.in_([r.id for _, r in chosen]))
                    .values(last_used_at=now, uses=AgentMemoryRow.uses + 1)
                )
            return [
                MemoryEntry(
                    id=r.id,
                    time=r.time_text,
                    event=r.event,
                    case=r.case_text,
                    person=r.person,
                    unusual=r.unusual,
                    source=r.source,
                    weight=round(w, 4),
                )
                for w, r in chosen
            ]

    def forget(self, owner: str) -> int:
        """Erase an owner's turns and memories (a patient's right to deletion)."""
        with self.db.session() as session:
            removed = len(
                session.scalars(select(AgentMemoryRow.id).where(AgentMemoryRow.owner == owner)).all()
            )
            session.execute(delete(AgentMemoryRow).where(AgentMemoryRow.owner == owner))
            session.execute(delete(AgentTurnRow).where(AgentTurnRow.owner == owner))
        return removed
