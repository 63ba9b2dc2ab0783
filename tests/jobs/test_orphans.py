"""``kill -9`` of a job's parent: its workers go too, on every executor that has workers (inline has none).

Processes are found through ``/proc`` (no psutil): the parent's descendants are recorded while it lives — once
it dies they are re-parented and no longer recognisable — each with its start time, so a recycled pid is never
mistaken for a survivor. Assertions are on existence after a bounded wait, never on speed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

Process = tuple[int, int]  # (pid, start time in clock ticks since boot)
GRACE = 15.0  # seconds the orphans get to exit; measured: local workers go in < 0.3 s, Ray's in ~2 s


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, start time) of a live process, None when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the command name may hold spaces and parentheses
    state, ppid, start = fields[0], int(fields[1]), int(fields[19])
    return None if state in ("Z", "X") else (ppid, state, start)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _descendants(root: int) -> dict[Process, str]:
    """Every live descendant of ``root`` with its command line."""
    parents: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := _stat(int(entry.name))):
            parents[int(entry.name)] = (info[0], info[2])
    found: dict[Process, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, start) in parents.items():
            if ppid == parent:
                found[(pid, start)] = _cmdline(pid)
                frontier.append(pid)
    return found


def _alive(process: Process) -> bool:
    info = _stat(process[0])
    return info is not None and info[2] == process[1]


def _kill(processes: list[Process]) -> None:
    for process in processes:
        if _alive(process):
            with contextlib.suppress(ProcessLookupError):
                os.kill(process[0], signal.SIGKILL)


@pytest.fixture
def reaper() -> Iterator[list[Process]]:
    """Processes the test started; whatever is still alive at the end is killed, pass or fail."""
    started: list[Process] = []
    yield started
    _kill(started)


def _kill_parent_when(
    proc: subprocess.Popen[bytes],
    ready: Callable[[dict[Process, str]], bool],
    reaper: list[Process],
    timeout: float = 120,
) -> dict[Process, str]:
    """Wait until ``ready(descendants)``, record them, then SIGKILL the parent alone; returns the orphans."""
    deadline = time.monotonic() + timeout
    while True:
        children = _descendants(proc.pid)
        reaper.extend(p for p in children if p not in reaper)
        if ready(children):
            break
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            pytest.fail(f"job ended before it could be killed (make it bigger): {err[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"workers never started: {sorted(children.values())}")
        time.sleep(0.1)
    proc.kill()  # the parent only: its workers are left to notice on their own
    proc.wait()
    return children


def _survivors(orphans: dict[Process, str], grace: float = GRACE) -> dict[Process, str]:
    deadline = time.monotonic() + grace
    while (alive := {p: cmd for p, cmd in orphans.items() if _alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def _start(args: list[str], env: dict[str, str], reaper: list[Process]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "medfusion", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    stat = _stat(proc.pid)
    if stat:
        reaper.append((proc.pid, stat[2]))
    return proc


def _population(out: Path, executor: str) -> list[str]:
    return [
        "synth",
        "population",
        "--size",
        "20000",
        "--seed",
        "1",
        "--format",
        "jsonl",
        "--out",
        str(out),
        "--executor",
        executor,
        "--workers",
        "2",
        "--quiet",
    ]


def test_local_workers_exit_when_the_parent_is_killed(tmp_path: Path, reaper: list[Process]) -> None:
    env = {**os.environ, "MEDFUSION_DATA_DIR": str(tmp_path / "var")}
    chunks = tmp_path / "var" / "jobs"
    proc = _start(_population(tmp_path / "x.jsonl", "local"), env, reaper)

    def working(children: dict[Process, str]) -> bool:
        workers = [cmd for cmd in children.values() if "spawn_main" in cmd]
        return len(workers) == 2 and any(chunks.glob("*/chunks/*.jsonl"))

    orphans = _kill_parent_when(proc, working, reaper)
    # the pool's workers and multiprocessing's resource tracker (which leaves once no worker holds its pipe)
    assert len(orphans) == 3, orphans
    assert _survivors(orphans) == {}
    assert not (tmp_path / "x.jsonl").exists()
    assert not list(
        chunks.glob("*/chunks/.*.partial")
    )  # a worker stopped mid-write removes its temporary file
    for chunk in chunks.glob("*/chunks/*.jsonl"):  # and every chunk file there is is whole
        assert len(chunk.read_bytes().splitlines()) == 1000, chunk


@pytest.mark.ray
def test_ray_workers_exit_when_the_parent_is_killed(tmp_path: Path, reaper: list[Process]) -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("ray is part of the dev extras and must be installed under CI=true")
        pytest.skip("ray not installed (pip install 'medfusion[ray]')")
    env = {**os.environ, "MEDFUSION_DATA_DIR": str(tmp_path / "var"), "RAY_AUTH_MODE": "disabled"}
    env.pop("MEDFUSION_RAY_ADDRESS", None)  # a local Ray started by the job itself
    env.pop("RAY_ADDRESS", None)
    proc = _start(_population(tmp_path / "x.jsonl", "ray"), env, reaper)

    def working(children: dict[Process, str]) -> bool:
        return sum(cmd.startswith("ray::run_one") for cmd in children.values()) >= 2

    orphans = _kill_parent_when(proc, working, reaper)
    # Ray's dashboard and runtime-env agents notice the raylet's death too but first try to report it to the
    # (equally dead) GCS, measured ~35 s; they are not ours to speed up, so only they get the longer wait
    agents = {
        p: cmd for p, cmd in orphans.items() if cmd.startswith(("ray::DashboardAgent", "ray::RuntimeEnv"))
    }
    rest = {p: cmd for p, cmd in orphans.items() if p not in agents}
    assert any("raylet" in cmd for cmd in rest.values()) and any("gcs_server" in cmd for cmd in rest.values())
    assert _survivors(rest) == {}
