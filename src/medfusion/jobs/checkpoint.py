"""Checkpoints: the job directory under ``MEDFUSION_DATA_DIR/jobs/<job id>/``. Files are written to a
temporary name and renamed (atomic on POSIX), so a chunk file that exists is complete. Database chunks commit
their marker row in the same transaction as their data; those markers are persistence and live in
:mod:`medfusion.store.job_chunks`."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medfusion.errors import Conflict


def job_id_for(kind: str, params: dict[str, Any]) -> str:
    canonical = json.dumps(params, sort_keys=True, ensure_ascii=False, default=str)
    return f"{kind}-{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"


_writing: set[Path] = set()  # this process's temporary files not yet renamed into place
_writing_lock = threading.Lock()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with _writing_lock:
        _writing.add(partial)
    try:
        with partial.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, path)
    finally:
        with _writing_lock:
            _writing.discard(partial)


def discard_partial_writes() -> None:
    """Delete this process's unfinished temporary files, for a worker about to exit in the middle of one
    (best effort: a job that reopens deletes whatever a killed worker left)."""
    with _writing_lock:
        pending = list(_writing)
    for partial in pending:
        partial.unlink(missing_ok=True)


def chunk_path(job_dir: Path, index: int, suffix: str = "") -> Path:
    """Where a job kind keeps chunk ``index``'s file: ``<job dir>/chunks/000042<suffix>``."""
    return job_dir / "chunks" / f"{index:06d}{suffix}"


class JobDir:
    def __init__(self, root: Path, job_id: str) -> None:
        self.path = root / "jobs" / job_id
        self.job_id = job_id

    @property
    def manifest(self) -> Path:
        return self.path / "job.json"

    def open(self, kind: str, params: dict[str, Any], total_chunks: int) -> bool:
        """Create or reopen; returns True when resuming an earlier run of the same job."""
        (self.path / "chunks").mkdir(parents=True, exist_ok=True)
        for stale in (self.path / "chunks").glob(".*.partial"):
            stale.unlink(missing_ok=True)  # a worker killed mid-write leaves these; never read
        if self.manifest.exists():
            existing = json.loads(self.manifest.read_text())
            if existing["kind"] != kind or existing["params"] != json.loads(json.dumps(params, default=str)):
                raise Conflict(f"作业目录 {self.path} 属于其他参数 job dir holds a different job")
            existing["runs"] = existing.get("runs", 1) + 1
            existing["state"] = "running"
            atomic_write_bytes(self.manifest, json.dumps(existing, ensure_ascii=False, indent=1).encode())
            return True
        manifest = {
            "job_id": self.job_id,
            "kind": kind,
            "params": json.loads(json.dumps(params, default=str)),
            "chunks": total_chunks,
            "created": datetime.now(UTC).isoformat(),
            "state": "running",
            "runs": 1,
        }
        atomic_write_bytes(self.manifest, json.dumps(manifest, ensure_ascii=False, indent=1).encode())
        return False

    def mark(self, state: str, **extra: Any) -> None:
        manifest = json.loads(self.manifest.read_text())
        manifest.update(state=state, updated=datetime.now(UTC).isoformat(), **extra)
        atomic_write_bytes(self.manifest, json.dumps(manifest, ensure_ascii=False, indent=1).encode())
