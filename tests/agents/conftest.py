"""A database with the shipped packs installed, built once per test session and copied per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from medfusion.knowledge import packs
from medfusion.store.database import Database


@pytest.fixture(scope="session")
def _packed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("packed") / "packed.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    for pack in packs.shipped():
        packs.install(db, pack)
    db.dispose()  # the last connection's close checkpoints the WAL into the main file
    return path


@pytest.fixture
def packed_db(_packed_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """A private copy; ``MEDFUSION_DATABASE_URL`` points at it so CLI and API use the same data."""
    path = tmp_path / "packed.db"
    for suffix in ("", "-wal", "-shm"):
        source = _packed_template.with_name(_packed_template.name + suffix)
        if source.exists():
            shutil.copy(source, path.with_name(path.name + suffix))
    url = f"sqlite:///{path}"
    monkeypatch.setenv("MEDFUSION_DATABASE_URL", url)
    from medfusion.settings import get_settings
    from medfusion.store.database import reset_database_cache

    get_settings.cache_clear()
    reset_database_cache()
    db = Database(url)
    yield db
    db.dispose()
