"""A benchmark's own database: a fresh SQLite file, migrated, with every shipped knowledge pack installed."""

from __future__ import annotations

from pathlib import Path

from medfusion.knowledge import packs
from medfusion.store.database import Database


def packed_database(path: Path) -> Database:
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    for pack in packs.shipped():
        packs.install(db, pack)
    return db
