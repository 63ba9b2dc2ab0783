from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from medfusion.settings import get_settings
from medfusion.store.database import Database, get_database
from medfusion.store.tables import Base


def test_migrations_create_exactly_the_declared_schema(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent(db: Database) -> None:
    head = db.head_revision()
    assert db.upgrade() == head
    assert db.upgrade() == head


def test_fresh_data_dir_is_migrated_on_first_use() -> None:
    settings = get_settings()
    db = get_database(settings)
    assert db.current_revision() == Database.head_revision()
    assert (settings.resolved_data_dir / "medfusion.db").exists()


def test_sqlite_runs_in_wal_mode() -> None:
    db = get_database()
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
