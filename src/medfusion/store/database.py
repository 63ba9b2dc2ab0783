"""Engines, sessions and migrations for SQLite (embedded default, WAL) and PostgreSQL.

Every command calls :func:`get_database`, which migrates to the newest schema on first use, so no
command fails on a fresh data directory. SQLite transactions start with ``BEGIN IMMEDIATE``: every
request appends to the audit chain, so every transaction writes, and taking the write lock up front
avoids lock-upgrade deadlocks between concurrent requests.

SQLite has one writer at a time. Threads of one process that wait for it through SQLite's busy handler
sleep and poll (1, 2, 5 … 100 ms between tries), so under 50 concurrent requests a few waited seconds
while the lock sat free (issue 15: chart read p99 2.9 s). :meth:`Database.session` therefore queues a
process's writers on one in-process lock per database file before ``BEGIN IMMEDIATE``: a waiting thread
wakes the moment the previous one commits. Other processes on the same file still meet SQLite's own
lock and busy timeout. PostgreSQL needs no gate (row locks; see ``store/audit``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from medfusion.errors import DatabaseUnavailable, MigrationFailed
from medfusion.settings import Settings, get_settings, normalise_database_url

_MIGRATIONS = Path(__file__).with_name("migrations")


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


# As long as SQLite's own busy timeout: a writer that waits longer gets the same answer it would have got.
WRITE_WAIT_SECONDS = 30.0
_gates: dict[str, threading.RLock] = {}
_gates_lock = threading.Lock()


def _sqlite_gate(url: str) -> threading.RLock:
    # re-entrant, so a thread that nests sessions meets SQLite's lock (and busy timeout) as before
    with _gates_lock:
        return _gates.setdefault(url, threading.RLock())


@contextmanager
def _gated(gate: threading.RLock) -> Iterator[None]:
    if not gate.acquire(timeout=WRITE_WAIT_SECONDS):
        raise DatabaseUnavailable("数据库写锁等待超时 timed out waiting for the database write lock")
    try:
        yield
    finally:
        gate.release()


_SQLITE_POOL = 40


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine; for SQLite, ``read_only`` engines begin plain (deferred) transactions instead of
    ``BEGIN IMMEDIATE``, so reads that write nothing (token checks) do not queue for the write lock."""
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        # One pooled connection per thread-pool thread (anyio's default limit is 40): SQLAlchemy's default
        # for a SQLite file (5 + 10 overflow) closed and reopened a connection — WAL pragmas included — on
        # most requests once more than 15 threads queried at once (py-spy: 12% of a chart read under 50
        # clients; issue 15 part 7). A SQLite connection costs a file handle and a page cache.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=_SQLITE_POOL,
            max_overflow=_SQLITE_POOL // 4,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event emit BEGIN itself
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    # At most 20 connections per process: `serve --workers N` opens N pools on one server, and a request
    # that waits for a pooled connection is better off than one refused by PostgreSQL's max_connections
    # (default 100; 4 workers × the former 40 exceeded it). The 40 thread-pool threads hold a connection
    # only while they query.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


class Database:
    """An engine, its session factory, and schema management."""

    def __init__(self, url: str) -> None:
        self.url = normalise_database_url(url)
        self.engine = make_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.read_engine = (
            make_engine(self.url, read_only=True) if self.url.startswith("sqlite") else self.engine
        )
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)
        self._gate = _sqlite_gate(self.url) if self.url.startswith("sqlite") else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @staticmethod
    def head_revision() -> str | None:
        return ScriptDirectory.from_config(_alembic_config()).get_current_head()

    def upgrade(self) -> str | None:
        """Migrate to the newest schema (idempotent); returns the revision now in place."""
        cfg = _alembic_config()
        sqlite = self.url.startswith("sqlite")
        try:
            with self.engine.connect() as conn:
                raw = conn.connection.dbapi_connection
                if sqlite and raw is not None:
                    # A batch migration rebuilds a SQLite table (copy, drop, rename); with foreign keys on,
                    # dropping `patients` would cascade-delete every chart row. SQLite's own recipe for
                    # altering a table: keys off outside the transaction, check them before commit.
                    raw.execute("PRAGMA foreign_keys=OFF")
                try:
                    with conn.begin():
                        cfg.attributes["connection"] = conn
                        command.upgrade(cfg, "head")
                        if sqlite:
                            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                            if broken:
                                raise MigrationFailed(
                                    f"迁移破坏了外键 migration broke {len(broken)} foreign keys: {broken[:5]}"
                                )
                finally:
                    if sqlite and raw is not None:
                        raw.execute("PRAGMA foreign_keys=ON")
        except OperationalError as exc:
            raise DatabaseUnavailable(
                f"数据库不可用 database unavailable: {exc.orig.__class__.__name__}"
            ) from None
        return self.current_revision()

    def ensure_schema(self) -> None:
        try:
            current = self.current_revision()
        except OperationalError as exc:
            raise DatabaseUnavailable(
                f"数据库不可用 database unavailable: {exc.orig.__class__.__name__}"
            ) from None
        if current != self.head_revision():
            self.upgrade()

    def write_gate(self) -> AbstractContextManager[None]:
        """Held for the whole of a write transaction: this process's queue for SQLite's one writer."""
        return _gated(self._gate) if self._gate is not None else nullcontext()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any exception."""
        with self.write_gate():
            session = self._sessions()
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A unit of work that only reads (never audits, never writes): always rolled back."""
        session = self._read_sessions()
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


_cache: dict[str, Database] = {}
_lock = threading.Lock()


def get_database(settings: Settings | None = None, *, migrate: bool = True) -> Database:
    """The process-wide database for these settings, migrated on first use."""
    url = (settings or get_settings()).resolved_database_url
    with _lock:
        db = _cache.get(url)
        if db is None:
            db = Database(url)
            if migrate:
                db.ensure_schema()
            _cache[url] = db
        return db


def reset_database_cache() -> None:
    with _lock:
        for db in _cache.values():
            db.dispose()
        _cache.clear()
