"""The hash chain catches altered, removed, reordered and truncated entries — on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from medfusion.store import audit
from medfusion.store.database import Database

ACTOR = audit.Actor("dr_wang", "doctor")


def _fill(db: Database, n: int = 6) -> None:
    for i in range(n):
        with db.session() as session:
            audit.record(session, ACTOR, "patient.read", patient_id=f"P{i}", detail={"i": i})


def _without_guards(db: Database, statement: str, **params: object) -> None:
    """Tamper as a database superuser would: drop the append-only triggers first."""
    with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        conn.execute(text(statement), params)


def _verify(db: Database) -> audit.AuditVerification:
    with db.session() as session:
        return audit.verify(session)


def test_intact_chain_verifies(db: Database) -> None:
    _fill(db)
    result = _verify(db)
    assert result.ok and result.entries == 6


def test_entries_link_to_their_predecessor(db: Database) -> None:
    _fill(db, 3)
    with db.session() as session:
        rows = audit.entries(session)
    assert rows[0].prev_hash == audit.GENESIS_HASH
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]


def test_database_refuses_update_and_delete(db: Database) -> None:
    _fill(db, 2)
    for statement in (
        "UPDATE audit_log SET outcome = 'denied' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 1",
    ):
        with pytest.raises(DBAPIError), db.engine.begin() as conn:
            conn.execute(text(statement))


def test_altered_entry_is_named(db: Database) -> None:
    _fill(db)
    _without_guards(db, "UPDATE audit_log SET patient_id = 'P999' WHERE seq = 3")
    result = _verify(db)
    assert not result.ok and result.first_bad_seq == 3 and "altered" in (result.reason or "")


def test_removed_entry_is_named(db: Database) -> None:
    _fill(db)
    _without_guards(db, "DELETE FROM audit_log WHERE seq = 4")
    result = _verify(db)
    assert not result.ok and result.first_bad_seq == 4


def test_reordered_entries_are_caught(db: Database) -> None:
    _fill(db)
    # swap the contents of entries 2 and 3 (keeping their sequence numbers)
    _without_guards(
        db,
        "UPDATE audit_log SET patient_id = CASE seq WHEN 2 THEN 'P2' WHEN 3 THEN 'P1' END, "
        "detail = CASE seq WHEN 2 THEN :d2 WHEN 3 THEN :d1 END WHERE seq IN (2, 3)",
        d2='{"i":2}',
        d1='{"i":1}',
    )
    result = _verify(db)
    assert not result.ok and result.first_bad_seq == 2


def test_truncated_tail_is_caught(db: Database) -> None:
    _fill(db)
    _without_guards(db, "DELETE FROM audit_log WHERE seq >= 5")
    result = _verify(db)
    assert not result.ok and result.first_bad_seq == 5 and "truncated" in (result.reason or "")


def test_failed_transaction_leaves_no_entry(db: Database) -> None:
    _fill(db, 2)
    with pytest.raises(RuntimeError), db.session() as session:
        audit.record(session, ACTOR, "patient.update", patient_id="P1")
        raise RuntimeError("work failed after auditing")
    result = _verify(db)
    assert result.ok and result.entries == 2


def test_concurrent_appends_keep_one_unbroken_chain(db: Database) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def worker(k: int) -> None:
        for i in range(15):
            with db.session() as session:
                audit.record(
                    session, audit.Actor(f"user{k}", "nurse"), "patient.read", patient_id=f"P{k}-{i}"
                )

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(worker, range(4)))
    result = _verify(db)
    assert result.ok and result.entries == 60


_APPENDER = """
import sys
from medfusion.store import audit
from medfusion.store.database import Database
db = Database(sys.argv[1])
for i in range(int(sys.argv[3])):
    with db.session() as session:
        audit.record(session, audit.Actor(sys.argv[2], "nurse"), "patient.read", patient_id=f"P{i}")
db.dispose()
"""


def test_appends_from_several_processes_keep_one_unbroken_chain(db: Database) -> None:
    # how `serve --workers N` appends: each process its own engine, one chain (PostgreSQL: the head row's
    # FOR UPDATE lock; SQLite: the database write lock taken by BEGIN IMMEDIATE)
    import subprocess
    import sys

    processes = [
        subprocess.Popen([sys.executable, "-c", _APPENDER, db.url, f"proc{k}", "20"]) for k in range(3)
    ]
    assert [p.wait(timeout=300) for p in processes] == [0, 0, 0]
    result = _verify(db)
    assert result.ok and result.entries == 60
    with db.session() as session:
        seqs = list(session.execute(text("SELECT seq FROM audit_log ORDER BY seq")).scalars())
    assert seqs == list(range(1, 61))  # no gap, no duplicate: one chain, no fork


def test_grouped_appends_commit_every_entry_once_and_a_bad_entry_fails_alone(db: Database) -> None:
    # reads append through audit.append: concurrent entries share a commit, each caller returns only
    # once its own entry is in the chain, and an entry that cannot be written fails only its own caller
    from concurrent.futures import ThreadPoolExecutor

    def reader(k: int) -> int | str:
        detail: dict[str, object] = {"k": k, "bad": object()} if k == 7 else {"k": k}
        try:
            return audit.append(db, audit.Actor(f"user{k}", "doctor"), "chart.read", detail=detail)
        except TypeError:
            return "failed"

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(reader, range(40)))
    assert results[7] == "failed"
    seqs = [r for r in results if isinstance(r, int)]
    assert sorted(seqs) == list(range(1, 40))
    result = _verify(db)
    assert result.ok and result.entries == 39


def test_group_commit_hands_the_lead_on_and_wakes_every_caller(db: Database) -> None:
    # many callers in bursts: every append returns (none left asleep when a batch hands the lead on),
    # each with its own sequence number, and the chain holds exactly one entry per call
    from concurrent.futures import ThreadPoolExecutor

    def burst(k: int) -> list[int]:
        actor = audit.Actor(f"user{k}", "doctor")
        return [audit.append(db, actor, "chart.read", detail={"k": k, "i": i}) for i in range(25)]

    with ThreadPoolExecutor(max_workers=32) as pool:
        futures = [pool.submit(burst, k) for k in range(32)]
        seqs = [seq for future in futures for seq in future.result(timeout=120)]
    assert sorted(seqs) == list(range(1, 32 * 25 + 1))
    result = _verify(db)
    assert result.ok and result.entries == 32 * 25
