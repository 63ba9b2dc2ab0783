"""kill -9 in the middle of a job, run it again: nothing lost, nothing duplicated."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from medfusion.synth import generate_population


def _medfusion(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "medfusion", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail("job finished before it could be killed; make it bigger")
        if time.monotonic() > deadline:
            pytest.fail("job made no progress")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: parent and pool workers, as in a crash
    proc.wait()


def test_file_job_survives_kill_9(tmp_path: Path) -> None:
    env = {**os.environ, "MEDFUSION_DATA_DIR": str(tmp_path / "var")}
    out = tmp_path / "pop.jsonl"
    args = [
        "synth",
        "population",
        "--size",
        "3000",
        "--seed",
        "21",
        "--chunk-size",
        "100",
        "--workers",
        "2",
        "--quiet",
        "--out",
        str(out),
    ]
    proc = _medfusion(args, env)

    def some_chunks_done() -> bool:
        return len(list((tmp_path / "var" / "jobs").glob("*/chunks/*.jsonl"))) >= 4

    _kill_when(proc, some_chunks_done)
    assert not out.exists()
    rerun = subprocess.run(
        [sys.executable, "-m", "medfusion", *args], env=env, capture_output=True, text=True, check=True
    )
    resumed = int(rerun.stderr.split("(")[1].split(" of ")[0])
    assert resumed >= 4
    reference = tmp_path / "ref.jsonl"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "medfusion",
            "synth",
            "population",
            "--size",
            "3000",
            "--seed",
            "21",
            "--executor",
            "inline",
            "--quiet",
            "--out",
            str(reference),
        ],
        env=env,
        check=True,
    )
    assert out.read_bytes() == reference.read_bytes()


def test_database_job_survives_kill_9(tmp_path: Path) -> None:
    env = {**os.environ, "MEDFUSION_DATA_DIR": str(tmp_path / "var")}
    size = 1200
    args = [
        "synth",
        "population",
        "--size",
        str(size),
        "--seed",
        "22",
        "--chunk-size",
        "40",
        "--workers",
        "2",
        "--quiet",
        "--into-db",
    ]
    db_file = tmp_path / "var" / "medfusion.db"

    def committed() -> int:
        if not db_file.exists():
            return 0
        try:
            with sqlite3.connect(db_file, timeout=1) as conn:
                return int(conn.execute("SELECT count(*) FROM job_chunks").fetchone()[0])
        except sqlite3.OperationalError:
            return 0

    proc = _medfusion(args, env)
    _kill_when(proc, lambda: committed() >= 3)
    assert 0 < committed() < size // 40
    subprocess.run([sys.executable, "-m", "medfusion", *args], env=env, check=True, capture_output=True)
    with sqlite3.connect(db_file) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM patients ORDER BY id")]
        loads = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'patient.bulk_create'"
        ).fetchone()[0]
        chunks = conn.execute("SELECT count(*), sum(items) FROM job_chunks").fetchone()
    assert ids == sorted(c.patient.id for c in generate_population(size, seed=22))
    assert loads == size // 40 and tuple(chunks) == (size // 40, size)
    verify = subprocess.run(
        [sys.executable, "-m", "medfusion", "audit", "verify"], env=env, capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stderr


def test_deid_corpus_survives_kill_9(tmp_path: Path) -> None:
    import json

    env = {**os.environ, "MEDFUSION_DATA_DIR": str(tmp_path / "var")}
    source, out, reference = tmp_path / "notes.jsonl", tmp_path / "deid.jsonl", tmp_path / "ref.jsonl"
    with source.open("w", encoding="utf-8") as fh:
        for i in range(30_000):
            fh.write(
                json.dumps(
                    {
                        "id": i,
                        "text": f"患者张三{i % 97}，电话1381234{i % 10000:04d}，"
                        f"于2024年3月{i % 28 + 1}日入院。",
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    args = [
        "privacy",
        "deid",
        "--in",
        str(source),
        "--out",
        str(out),
        "--chunk-kb",
        "64",
        "--workers",
        "2",
        "--quiet",
    ]
    proc = _medfusion(args, env)

    def some_chunks_done() -> bool:
        return len(list((tmp_path / "var" / "jobs").glob("privacy-deid-*/chunks/*.json"))) >= 5

    _kill_when(proc, some_chunks_done)
    assert not out.exists()
    subprocess.run([sys.executable, "-m", "medfusion", *args], env=env, check=True, capture_output=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "medfusion",
            "privacy",
            "deid",
            "--in",
            str(source),
            "--out",
            str(reference),
            "--executor",
            "inline",
            "--quiet",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == reference.read_bytes()
    assert len(out.read_text(encoding="utf-8").splitlines()) == 30_000
