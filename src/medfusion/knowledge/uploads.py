"""Documents uploaded from the browser: received to disk in 1 MiB pieces (never whole in memory), then read,
ingested and embedded in the background — one task after another per server process — with a progress
record a page can poll.

A task is a folder ``data_dir/kb/uploads/<task id>/`` holding the file, ``task.json`` (state, counts, who)
and ``heartbeat`` (touched every few seconds while the task is queued or running). Ingestion is the knowledge
base's own (one transaction per document; unchanged content is detected by hash) and embedding is its
resumable job (:meth:`KnowledgeBase.embed`), so a server that stops mid-task loses nothing: the task shows as
interrupted (its heartbeat went quiet) and 继续 runs it again — the ingest answers ``unchanged`` and the
embedding picks up where it stopped (vectors are cached per chunk).

A double submit does not ingest twice: the form's idempotency key is claimed once, atomically (a hard link
fails when the name exists, across processes too), and an upload whose name and content hash match a task
still queued or running joins that task instead of starting another.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import queue
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, Field, ValidationError

from medfusion.errors import InvalidInput, MedFusionError, NotFound, PayloadTooLarge, UnsupportedMediaType
from medfusion.knowledge import embeddings
from medfusion.knowledge.base import KnowledgeBase
from medfusion.knowledge.documents import Authority, DocType, DocumentMeta
from medfusion.knowledge.readers import SUPPORTED, DocumentError
from medfusion.store import audit
from medfusion.store.access import Principal
from medfusion.store.database import Database

log = logging.getLogger(__name__)

PIECE = 1024 * 1024  # bytes copied at a time from the request's spool to the task folder
HEARTBEAT_SECONDS = 3.0
STALE_SECONDS = 30.0  # a queued or running task whose heartbeat is older was left by a stopped server
KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# a stored name's UTF-8 length: under NAME_MAX (255 bytes on ext4, XFS, APFS, NTFS), with room to spare —
# a Chinese guideline's title is three bytes a character
MAX_NAME_BYTES = 200
FORMATS = "PDF、DOCX、HTML、Markdown、TXT"


class UploadState(StrEnum):
    queued = "queued"
    reading = "reading"
    embedding = "embedding"
    completed = "completed"
    failed = "failed"
    interrupted = "interrupted"


ACTIVE = frozenset({UploadState.queued, UploadState.reading, UploadState.embedding})
STATE_LABELS = {
    UploadState.queued: "排队中",
    UploadState.reading: "读取与切分",
    UploadState.embedding: "向量化",
    UploadState.completed: "已完成",
    UploadState.failed: "失败",
    UploadState.interrupted: "已中断",
}


class UploadOptions(BaseModel):
    doc_type: DocType = DocType.guideline
    authority: Authority = Authority.guideline
    publisher: str | None = Field(default=None, max_length=200)
    department: str | None = Field(default=None, max_length=100)
    embed: bool = True


class UploadTask(BaseModel):
    id: str
    filename: str
    source: str
    size: int
    sha256: str
    options: UploadOptions
    username: str
    role: str
    pid: int
    created_at: datetime
    updated_at: datetime
    state: UploadState = UploadState.queued
    document_id: str | None = None
    title: str | None = None
    chunks: int = 0
    new_chunks: int = 0
    outcome: str | None = None  # the ingest's status: added | updated | unchanged
    embedded: int = 0
    embed_total: int = 0
    error_code: str | None = None
    error_message: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def label(self) -> str:
        return STATE_LABELS[self.state]


@dataclass(frozen=True)
class Received:
    """A file copied into its task folder, not yet a task."""

    folder: Path
    path: Path
    size: int
    sha256: str


def root_for(data_dir: Path) -> Path:
    return data_dir / "kb" / "uploads"


def fit_name(filename: str | None) -> str:
    """The file's own name (browsers may send a full Windows path), control characters removed; a long name
    loses the end of its stem, never its extension, to fit :data:`MAX_NAME_BYTES`."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()
    if not name or name in (".", ".."):
        raise InvalidInput.for_field("file", "请选择要上传的文件 choose a file", code="file_missing")
    suffix = Path(name).suffix
    if len(suffix.encode()) > 16:  # not an extension we could keep: cut the name as a whole
        suffix = ""
    budget = MAX_NAME_BYTES - len(suffix.encode())
    # cut at a byte budget, dropping a character split in two (errors="ignore")
    return name.removesuffix(suffix).encode()[:budget].decode(errors="ignore").rstrip() + suffix


def safe_name(filename: str | None) -> str:
    """:func:`fit_name`, with a supported extension (else a typed 415 before anything is stored)."""
    name = fit_name(filename)
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED:
        raise UnsupportedMediaType(
            f"不支持的文件类型 {suffix or '（无扩展名）'}：只接受 {FORMATS} unsupported file type",
            details={"accepted": list(SUPPORTED)},
        )
    return name


def check_key(key: str | None) -> None:
    """An idempotency key is a form's own token or nothing (checked before the file is received)."""
    if key is not None and not KEY.fullmatch(key):
        raise InvalidInput.for_field("idempotency_key", "格式无效 malformed key")


def discard(received: Received) -> None:
    """Remove a received file that did not become a task (the upload failed after it was written)."""
    shutil.rmtree(received.folder, ignore_errors=True)


def receive(root: Path, stream: BinaryIO, filename: str, limit: int) -> Received:
    """Copy ``stream`` into a new task folder piece by piece, hashing as it goes; over ``limit`` bytes or
    empty, the folder is removed and a typed error raised."""
    folder = root / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = folder / filename
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("wb") as out:
            while piece := stream.read(PIECE):
                size += len(piece)
                if size > limit:
                    raise PayloadTooLarge(
                        f"文件超过上传上限 {limit / 1024 / 1024:.0f} MB file over the upload limit",
                        details={"limit_bytes": limit},
                    )
                digest.update(piece)
                out.write(piece)
        if size == 0:
            raise DocumentError.for_field(filename, "空文档 empty document")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Received(folder=folder, path=path, size=size, sha256=digest.hexdigest())


# --- task records ------------------------------------------------------------------------------------
_write_lock = threading.Lock()
_submit_lock = threading.Lock()
_owned: dict[str, Path] = {}  # task id → root, of the tasks this process has queued or is running
_owned_lock = threading.Lock()


def _task_file(root: Path, task_id: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{32}", task_id):
        raise NotFound(f"没有这个导入任务 no upload task {task_id}")
    return root / task_id / "task.json"


def _write(root: Path, task: UploadTask) -> None:
    path = _task_file(root, task.id)
    partial = path.with_name(f".task.{os.getpid()}.{threading.get_ident()}.partial")
    partial.write_text(task.model_dump_json(indent=1), encoding="utf-8")
    os.replace(partial, path)


def _read(root: Path, task_id: str) -> UploadTask:
    path = _task_file(root, task_id)
    try:
        return UploadTask.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"没有这个导入任务 no upload task {task_id}") from None


def _update(root: Path, task_id: str, **changes: object) -> UploadTask:
    with _write_lock:
        task = _read(root, task_id).model_copy(update={**changes, "updated_at": datetime.now(UTC)})
        _write(root, task)
    return task


def _beat(root: Path, task_id: str) -> None:
    with contextlib.suppress(OSError):
        (root / task_id / "heartbeat").touch()


def _alive(root: Path, task: UploadTask) -> bool:
    """Is someone still working on this active task? This process knows its own; another process's task
    lives while its heartbeat is fresh."""
    if task.pid == os.getpid():
        with _owned_lock:
            return task.id in _owned
    try:
        beat = (root / task.id / "heartbeat").stat().st_mtime
    except OSError:
        return False
    return time.time() - beat < STALE_SECONDS


def _checked(root: Path, task: UploadTask) -> UploadTask:
    if task.active and not _alive(root, task):
        return _update(
            root,
            task.id,
            state=UploadState.interrupted,
            error_message=f"服务在{task.label}时停止 the server stopped while this task was {task.state}",
        )
    return task


def task(root: Path, task_id: str) -> UploadTask:
    return _checked(root, _read(root, task_id))


def tasks(root: Path, limit: int = 20) -> list[UploadTask]:
    """The newest tasks first; a task whose worker is gone is shown (and stored) as interrupted."""
    if not root.is_dir():
        return []
    found: list[UploadTask] = []
    for path in root.glob("*/task.json"):
        try:
            found.append(UploadTask.model_validate_json(path.read_text(encoding="utf-8")))
        except (OSError, ValidationError):
            continue  # a folder still being created, or not ours
    found.sort(key=lambda t: t.created_at, reverse=True)
    return [_checked(root, t) for t in found[:limit]]


def _claim(root: Path, key: str, task_id: str) -> str | None:
    """Claim ``key`` for ``task_id``; returns the task that holds it already, if another does."""
    keys = root / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    target = keys / key
    partial = keys / f".{key}.{uuid.uuid4().hex}"
    partial.write_text(task_id)
    try:
        os.link(partial, target)  # atomic: exactly one claimant of a name wins
        return None
    except FileExistsError:
        return target.read_text().strip()
    finally:
        partial.unlink(missing_ok=True)


def _existing(root: Path, task_id: str) -> UploadTask:
    """The winner of a claim may not have written its record yet: wait for it briefly."""
    for _ in range(100):
        try:
            return task(root, task_id)
        except NotFound:
            time.sleep(0.05)
    return task(root, task_id)


# --- the worker ---------------------------------------------------------------------------------------
_queue: queue.Queue[tuple[Path, str, KnowledgeBase, Database]] = queue.Queue()
_worker: threading.Thread | None = None
_worker_lock = threading.Lock()


def _ensure_worker() -> None:
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_work, name="medfusion-kb-uploads", daemon=True)
            _worker.start()
            threading.Thread(target=_heartbeats, name="medfusion-kb-heartbeat", daemon=True).start()


def _heartbeats() -> None:
    while True:
        with _owned_lock:
            owned = list(_owned.items())
        for task_id, root in owned:
            _beat(root, task_id)
        time.sleep(HEARTBEAT_SECONDS)


def _enqueue(root: Path, task_id: str, kb: KnowledgeBase, db: Database) -> None:
    with _owned_lock:
        _owned[task_id] = root
    _beat(root, task_id)
    _queue.put((root, task_id, kb, db))
    _ensure_worker()


def _work() -> None:
    while True:
        root, task_id, kb, db = _queue.get()
        try:
            run_task(root, task_id, kb, db)
        except Exception:  # a bug must not stop the queue; the task is left interrupted (resumable)
            log.exception("upload task %s stopped", task_id)
            with contextlib.suppress(MedFusionError, OSError):
                _update(root, task_id, state=UploadState.interrupted, error_message="内部错误 internal error")
        finally:
            with _owned_lock:
                _owned.pop(task_id, None)
            _queue.task_done()


def run_task(root: Path, task_id: str, kb: KnowledgeBase, db: Database) -> UploadTask:
    """Read, ingest and (unless deferred) embed one uploaded document, recording progress as it goes."""
    current = _update(root, task_id, state=UploadState.reading, error_code=None, error_message=None)
    path = root / task_id / current.filename
    actor = audit.Actor(current.username, current.role)
    options = current.options
    meta = DocumentMeta(
        source=current.source,
        title=Path(current.filename).stem,
        doc_type=options.doc_type,
        authority=options.authority,
        publisher=options.publisher,
        department=options.department,
    )
    try:
        result = kb.ingest_file(path, meta)
    except MedFusionError as error:
        path.unlink(missing_ok=True)
        with db.session() as session:
            failure = {"source": current.source, "task": task_id, "code": error.code}
            audit.record(session, actor, "kb.ingest", audit.Outcome.failed, detail=failure)
        return _update(
            root, task_id, state=UploadState.failed, error_code=error.code, error_message=error.message
        )
    pending = len(embeddings.missing_chunk_ids(db, document_ids=[result.document_id])) if options.embed else 0
    current = _update(
        root,
        task_id,
        state=UploadState.embedding if pending else UploadState.completed,
        document_id=result.document_id,
        title=result.title,
        chunks=result.chunks,
        new_chunks=result.new_chunks,
        outcome=result.status,
        embed_total=pending,
    )
    if pending:
        shown = {"at": 0.0}

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done >= total or now - shown["at"] >= 0.5:
                shown["at"] = now
                _update(root, task_id, embedded=done, embed_total=total)

        # in this worker thread: no job processes are forked from the server (as the API upload)
        embedded = kb.embed(executor="inline", document_ids=[result.document_id], progress=progress)
        current = _update(root, task_id, state=UploadState.completed, embedded=embedded, embed_total=pending)
    path.unlink(missing_ok=True)  # ingested: the knowledge base holds the text now
    with db.session() as session:
        detail: dict[str, Any] = {
            "source": result.source,
            "status": result.status,
            "task": task_id,
            "embedded": current.embedded,
            "surface": "web",
        }
        audit.record(session, actor, "kb.ingest", detail=detail)
    return current


# --- what pages call ----------------------------------------------------------------------------------
def submit(
    root: Path,
    received: Received,
    options: UploadOptions,
    principal: Principal,
    kb: KnowledgeBase,
    db: Database,
    key: str | None = None,
) -> UploadTask:
    """Make ``received`` a queued task and start it — or, for a repeated key or the same file still in
    progress, drop it and return the task that is already doing the work."""
    try:
        check_key(key)
    except InvalidInput:
        discard(received)
        raise
    task_id = received.folder.name
    filename = received.path.name
    source = f"upload:{filename}"
    with _submit_lock:
        holder = _claim(root, key, task_id) if key else None
        if holder is None:
            same = next(
                (
                    t
                    for t in tasks(root, limit=200)
                    if t.active and (t.source, t.sha256) == (source, received.sha256)
                ),
                None,
            )
            if same is None:
                now = datetime.now(UTC)
                created = UploadTask(
                    id=task_id,
                    filename=filename,
                    source=source,
                    size=received.size,
                    sha256=received.sha256,
                    options=options,
                    username=principal.username,
                    role=principal.role,
                    pid=os.getpid(),
                    created_at=now,
                    updated_at=now,
                )
                with _owned_lock:  # owned before it is visible, so no reader takes it for abandoned
                    _owned[task_id] = root
                try:
                    with _write_lock:
                        _write(root, created)
                    with db.session() as session:
                        detail = {"source": source, "bytes": received.size, "task": task_id, "surface": "web"}
                        audit.record(session, principal.actor, "kb.upload", detail=detail)
                except BaseException:  # no task after all: nothing may look queued, nothing stays on disk
                    with _owned_lock:
                        _owned.pop(task_id, None)
                    discard(received)
                    raise
                _enqueue(root, task_id, kb, db)
                return created
            holder = same.id
    discard(received)
    return _existing(root, holder)


def resume(root: Path, task_id: str, principal: Principal, kb: KnowledgeBase, db: Database) -> UploadTask:
    """Run an interrupted task again (its file is still in its folder). Checked and queued under one lock,
    so two clicks at once queue it once (the second is told it is no longer interrupted)."""
    with _submit_lock:
        found = task(root, task_id)
        if found.state is not UploadState.interrupted:
            raise InvalidInput.for_field(
                "task",
                f"只有已中断的任务可以继续 only an interrupted task resumes ({found.label})",
                code="not_resumable",
            )
        if not (root / task_id / found.filename).is_file():
            raise NotFound("上传的文件已不在服务器上，请重新上传 the uploaded file is gone: upload it again")
        with _owned_lock:
            _owned[task_id] = root
        resumed = _update(root, task_id, state=UploadState.queued, pid=os.getpid(), error_message=None)
        with db.session() as session:
            detail = {"source": found.source, "task": task_id, "surface": "web"}
            audit.record(session, principal.actor, "kb.upload.resume", detail=detail)
        _enqueue(root, task_id, kb, db)
    return resumed


def wait(timeout: float = 60.0) -> bool:
    """Block until this process has no queued or running task (tests, and a clean shutdown)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _owned_lock:
            if not _owned:
                return True
        time.sleep(0.02)
    return False


def summary(items: list[UploadTask]) -> list[dict[str, object]]:
    """The tasks as the page's progress poll returns them."""
    return [
        {
            "id": t.id,
            "filename": t.filename,
            "state": t.state.value,
            "label": t.label,
            "active": t.active,
            "chunks": t.chunks,
            "embedded": t.embedded,
            "embed_total": t.embed_total,
            "outcome": t.outcome,
            "document_id": t.document_id,
            "error_code": t.error_code,
            "error_message": t.error_message,
        }
        for t in items
    ]


__all__ = [
    "ACTIVE",
    "MAX_NAME_BYTES",
    "STATE_LABELS",
    "Received",
    "UploadOptions",
    "UploadState",
    "UploadTask",
    "check_key",
    "discard",
    "fit_name",
    "receive",
    "resume",
    "root_for",
    "run_task",
    "safe_name",
    "submit",
    "task",
    "tasks",
    "wait",
]
