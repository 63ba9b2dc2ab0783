from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, text

from medfusion.record.models import PatientChart
from medfusion.settings import get_settings
from medfusion.store.database import Database, _alembic_config, get_database
from medfusion.store.patients import PatientRepository
from medfusion.store.tables import CHILD_TABLES, Base, PatientRow


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


def test_upgrading_a_database_that_holds_charts_loses_no_row(
    database_url: str, demo_charts: list[PatientChart]
) -> None:
    """A batch migration rebuilds a SQLite table; with foreign keys on, rebuilding `patients` cascaded into
    every chart table and emptied it (0013 did, upgrading from 0012). Every row written under an older
    revision survives the upgrade to head."""
    chart = demo_charts[0]
    database = Database(database_url)
    cfg = _alembic_config()
    try:
        with database.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0011")
            old = {
                t: {c["name"] for c in inspect(conn).get_columns(t)} for t in inspect(conn).get_table_names()
            }
            values = PatientRepository._patient_values(chart.patient, created=datetime.now(UTC))
            conn.execute(insert(PatientRow).values({k: v for k, v in values.items() if k in old["patients"]}))
            written: dict[str, int] = {}
            for kind, rows in PatientRepository._child_values(chart):
                table = CHILD_TABLES[kind].__table__  # type: ignore[attr-defined]
                for row in rows:
                    conn.execute(insert(table).values({k: v for k, v in row.items() if k in old[table.name]}))
                written[table.name] = written.get(table.name, 0) + len(rows)
        assert len(written) >= 4 and database.upgrade() == Database.head_revision()
        with database.engine.connect() as conn:
            for name, count in written.items():
                assert conn.execute(text(f"SELECT count(*) FROM {name}")).scalar() == count, name
        with database.session() as session:
            assert PatientRepository(session).get_chart(chart.patient.id) == chart
    finally:
        database.dispose()
