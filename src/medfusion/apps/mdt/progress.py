"""MDT runs started from the web page: one progress record per run, written as the specialties answer.

The page (``/mdt``) starts the consultation in a background thread, as the validation center starts its
runs, and polls ``/mdt/runs/{id}``; the record says who sits on the team, which specialties have answered
(with their confidence and path), the stage, and — once the pipeline has stored the run — its run id, from
which the page reads the result like any stored run. The record lives in
``data_dir/mdt/runs/<id>.json``, replaced whole on every write (a poller never reads half a file), so any
worker on the machine can answer the poll.

The id is the form's one-time key: a second POST of the same form (a double click, a reload) finds the
record already made — created with ``O_EXCL``, so two racing requests cannot both win — and is sent to the
same run instead of starting another. A record whose run stopped writing for ``STALE`` (the server was
restarted mid-run) reads as interrupted rather than running forever."""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from medfusion.apps.mdt.models import MdtEvent, TeamMember
from medfusion.errors import InvalidInput, NotFound
from medfusion.jobs.checkpoint import atomic_write_bytes

__all__ = ["KEY", "STALE", "Answered", "Progress", "ProgressBook", "Recorder"]

KEY = re.compile(r"^[0-9a-f]{32}$")
STALE = timedelta(minutes=10)
KEEP = timedelta(days=7)
_log = logging.getLogger(__name__)

State = Literal["running", "done", "failed"]
Source = Literal["chart", "case", "bundle"]


class Answered(BaseModel):
    """One specialty's view as it came in (its full view is in the stored result)."""

    specialty: str
    label: str
    round: int
    confidence: float
    path: str
    fallback: str | None = None
    options: int
    first: str | None = None  # its first recommendation, for the page to show while the others answer
    at: datetime


class Progress(BaseModel):
    id: str
    username: str
    source: Source
    patient_id: str | None = None
    started: datetime
    updated: datetime
    state: State = "running"
    stage: str = "读取病例、核查用药冲突"
    routing: Literal["solo", "team"] | None = None
    team: list[TeamMember] = Field(default_factory=list)
    second_round: list[TeamMember] = Field(default_factory=list)
    answered: list[Answered] = Field(default_factory=list)
    run_id: str | None = None  # the stored run, once done
    status: str | None = None  # the stored run's status when it was stored (needs confirmation, refused)
    error_code: str | None = None
    error_message: str | None = None

    @property
    def interrupted(self) -> bool:
        return self.state == "running" and datetime.now(UTC) - self.updated > STALE

    @property
    def seconds(self) -> float:
        return round((self.updated - self.started).total_seconds(), 1)

    def waiting(self) -> list[TeamMember]:
        """Team members (of the latest round) that have not answered yet."""
        round_no = 2 if self.second_round else 1
        members = self.second_round or self.team
        done = {a.specialty for a in self.answered if a.round == round_no}
        return [m for m in members if m.specialty not in done]


class ProgressBook:
    """The progress records under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not KEY.match(key):
            raise InvalidInput.for_field(
                "form_key", "表单标识无效，请刷新页面后重试 invalid form key", code="bad_form_key"
            )
        return self.root / f"{key}.json"

    def create(
        self, key: str, username: str, source: Source, patient_id: str | None
    ) -> tuple[Progress, bool]:
        """A new record for ``key`` (``True``), or the one an earlier submission of the same form made
        (``False``). Another user's key is refused as if it did not exist."""
        path = self._path(key)
        self.root.mkdir(parents=True, exist_ok=True)
        self._prune()
        now = datetime.now(UTC)
        record = Progress(
            id=key, username=username, source=source, patient_id=patient_id, started=now, updated=now
        )
        try:
            with path.open("x", encoding="utf-8") as handle:
                handle.write(record.model_dump_json())
        except FileExistsError:
            return self.read(key, username), False
        return record, True

    def read(self, key: str, username: str) -> Progress:
        path = self._path(key)
        try:
            record = Progress.model_validate_json(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            raise NotFound(f"没有这次会诊 no MDT run {key}") from None
        if record.username != username:
            raise NotFound(f"没有这次会诊 no MDT run {key}")
        return record

    def write(self, record: Progress) -> None:
        atomic_write_bytes(self._path(record.id), record.model_dump_json().encode("utf-8"))

    def _prune(self) -> None:
        """Records older than ``KEEP`` go (the stored run, not the record, is what lasts)."""
        cutoff = time.time() - KEEP.total_seconds()
        for old in self.root.glob("*.json"):
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
            except FileNotFoundError:
                continue


class Recorder:
    """Writes one run's progress as events arrive (from the pipeline's thread and the specialty agents'
    worker threads alike)."""

    def __init__(self, book: ProgressBook, record: Progress) -> None:
        self.book = book
        self.record = record
        self._lock = threading.Lock()

    def __call__(self, event: MdtEvent) -> None:
        with self._lock:
            r = self.record
            if event.kind == "team":
                r.routing, r.team = event.routing, event.team
                r.stage = f"第 1 轮：{len(event.team)} 个科室发表意见"
            elif event.kind == "round":
                r.second_round = event.team
                r.stage = f"置信度偏低，第 2 轮：{'、'.join(m.label for m in event.team)} 补充检索后再议"
            elif event.kind == "view" and event.view is not None:
                v = event.view
                r.answered.append(
                    Answered(
                        specialty=v.specialty,
                        label=v.label,
                        round=event.round,
                        confidence=v.confidence,
                        path=v.path,
                        fallback=v.fallback.value if v.fallback else None,
                        options=len(v.options),
                        first=v.options[0].text if v.options else None,
                        at=datetime.now(UTC),
                    )
                )
            elif event.kind == "consensus":
                r.stage = "形成加权共识、复核用药冲突、撰写纪要"
            self._save()

    def done(self, run_id: str, status: str) -> None:
        with self._lock:
            self.record.state, self.record.run_id, self.record.status = "done", run_id, status
            self.record.stage = "已完成"
            self._save()

    def failed(self, code: str, message: str) -> None:
        with self._lock:
            self.record.state, self.record.error_code, self.record.error_message = "failed", code, message
            self.record.stage = "未完成"
            self._save()

    def _save(self) -> None:
        self.record.updated = datetime.now(UTC)
        try:
            self.book.write(self.record)
        except OSError:  # the run goes on; the page shows the last record it could read
            _log.exception("MDT progress record not written")
