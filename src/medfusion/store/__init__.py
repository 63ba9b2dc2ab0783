"""Persistence: SQLite (WAL) by default, PostgreSQL by URL; repositories per aggregate; the audit log."""

from medfusion.store.database import Database, get_database

__all__ = ["Database", "get_database"]
