"""Engines, sessions and migrations for SQLite (embedded default, WAL) and PostgreSQL.

Every command calls :func:`get_database`, which migrates to the newest schema on first use, so no
command fails on a fresh data directory. SQLite transactions start with ``BEGIN IMMEDIATE``: every
request appends to the audit chain, so every transaction writes, and taking the write lock up front
avoids lock-upgrade deadlocks between concurrent requests.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from medfusion.errors import DatabaseUnavailable
from medfusion.settings import Settings, get_settings, normalise_database_url

_MIGRATIONS = Path(__file__).with_name("migrations")


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine; for SQLite, ``read_only`` engines begin plain (deferred) transactions instead of
    ``BEGIN IMMEDIATE``, so reads that write nothing (token checks) do not queue for the write lock."""
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

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
    # the API serves sync routes from a thread pool (40 threads): let them all hold a connection
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=30)


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
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
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

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any exception."""
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
