"""A response cache keyed by endpoint + model + the whole prompt (messages, tools, schema, temperature).

Only deterministic requests (temperature 0) are cached: asking the same model the same thing twice — a
re-run evaluation, a repeated guideline question — costs nothing the second time. It is one SQLite file
under the data dir (it holds prompts, so it stays inside the hospital like the database does); for an
``external`` endpoint the key and the stored answer are the de-identified text.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from medfusion.llm.messages import Completion


def cache_key(endpoint: str, body: dict[str, Any]) -> str:
    canonical = json.dumps({"endpoint": endpoint, **body}, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, at REAL, body TEXT)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def get(self, key: str) -> Completion | None:
        with self._lock, self._connect() as conn:
            row = conn.execute("SELECT body FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return Completion.model_validate_json(row[0])
        except ValueError:
            return None  # written by an older version: a miss, overwritten on the next call

    def put(self, key: str, completion: Completion) -> None:
        with self._lock, self._connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                (key, completion.model, time.time(), completion.model_dump_json()),
            )

    def clear(self) -> int:
        with self._lock, self._connect() as conn:
            return conn.execute("DELETE FROM responses").rowcount
