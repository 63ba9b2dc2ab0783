"""The consult page's double-submit guard: one form submission, one stored run.

Each rendering of the form carries a fresh key. The first POST of a key and a request claims a submission
record (created with ``O_EXCL``, so of two racing requests exactly one wins) and runs the consult; a repeat
of the same submission (a double click, a reload of the POST, a browser retry) finds the record and is sent
to the first one's run — waiting for it while it is still running. The same key with a changed text (edited
and sent again) is another question and gets its own record.

Records are small files under ``data_dir/consult/submissions/`` (any worker on the machine sees them),
removed after ``KEEP``; a run that failed on its input releases its record, so a corrected form can be
sent again under the same key."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel

from medfusion.apps.consult.models import ConsultRequest
from medfusion.errors import InvalidInput
from medfusion.jobs.checkpoint import atomic_write_bytes

__all__ = ["KEY", "Submission", "Submissions"]

KEY = re.compile(r"^[0-9a-f]{32}$")
KEEP = timedelta(days=1)


class Submission(BaseModel):
    name: str  # the record's file name (user, key and request hashed)
    run_id: str | None = None


class Submissions:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, username: str, key: str, request: ConsultRequest) -> Path:
        if not KEY.match(key):
            raise InvalidInput.for_field(
                "form_key", "表单标识无效，请刷新页面后重试 invalid form key", code="bad_form_key"
            )
        seen = hashlib.sha256(f"{username}\n{key}\n{request.model_dump_json()}".encode()).hexdigest()
        return self.root / f"{seen[:40]}.json"

    def claim(self, username: str, key: str, request: ConsultRequest) -> tuple[Submission, bool]:
        """This submission's record, and whether this request is the first to make it."""
        path = self._path(username, key, request)
        self.root.mkdir(parents=True, exist_ok=True)
        self._prune()
        record = Submission(name=path.name)
        try:
            with path.open("x", encoding="utf-8") as handle:
                handle.write(record.model_dump_json())
        except FileExistsError:
            return self._read(path), False
        return record, True

    def finish(self, record: Submission, run_id: str) -> None:
        done = record.model_copy(update={"run_id": run_id})
        atomic_write_bytes(self.root / record.name, done.model_dump_json().encode("utf-8"))

    def release(self, record: Submission) -> None:
        (self.root / record.name).unlink(missing_ok=True)

    def wait(self, record: Submission, seconds: float, step: float = 0.2) -> Submission | None:
        """The first submission's record once it has a run (``None``: it failed and was released, or it
        did not finish within ``seconds``)."""
        deadline = time.monotonic() + seconds
        path = self.root / record.name
        while True:
            if not path.exists():
                return None
            current = self._read(path)
            if current.run_id is not None:
                return current
            if time.monotonic() >= deadline:
                return None
            time.sleep(step)

    @staticmethod
    def _read(path: Path) -> Submission:
        try:
            return Submission.model_validate_json(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            # half-written by the first request at this very moment, or just released
            return Submission(name=path.name)

    def _prune(self) -> None:
        cutoff = time.time() - KEEP.total_seconds()
        for old in self.root.glob("*.json"):
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
            except FileNotFoundError:
                continue
