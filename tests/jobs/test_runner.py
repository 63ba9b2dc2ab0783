from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medfusion.cli.population_jobs import PopulationToFile
from medfusion.jobs import run_job
from medfusion.jobs.checkpoint import job_id_for
from medfusion.jobs.model import Chunk, ChunkReport, JobContext, JobKind, even_chunks

FAIL_FLAG = "MEDFUSION_TEST_FAIL_CHUNK"


class Squares(JobKind):
    """A tiny job: chunk i writes the squares of its range; fails once on a chosen chunk when asked."""

    name = "test-squares"

    def chunks(self, params: dict[str, Any]) -> list[Chunk]:
        return even_chunks(params["n"], params["size"])

    def run_chunk(self, params: dict[str, Any], chunk: Chunk, ctx: JobContext) -> ChunkReport:
        flag = ctx.job_dir / "fail-once"
        if flag.exists() and chunk.index == params["fail_at"]:
            flag.unlink()
            raise RuntimeError("simulated crash")
        runs = ctx.job_dir / f"runs-{chunk.index}"
        runs.write_text(str(int(runs.read_text()) + 1 if runs.exists() else 1))
        (ctx.job_dir / "chunks" / f"{chunk.index}.txt").write_text(
            "\n".join(str(i * i) for i in range(chunk.start, chunk.start + chunk.count))
        )
        return ChunkReport(index=chunk.index, items=chunk.count)

    def is_done(self, params: dict[str, Any], chunk: Chunk, ctx: JobContext) -> bool:
        return (ctx.job_dir / "chunks" / f"{chunk.index}.txt").exists()

    def finish(self, params: dict[str, Any], chunks: list[Chunk], ctx: JobContext) -> str:
        return "\n".join((ctx.job_dir / "chunks" / f"{c.index}.txt").read_text() for c in chunks)


def _run(tmp_path: Path, params: dict[str, Any], **kw: Any) -> Any:
    return run_job(Squares(), params, data_dir=tmp_path, database_url="sqlite://", executor="inline", **kw)


def test_even_chunks_cover_the_range_once() -> None:
    chunks = even_chunks(1001, 100)
    assert [c.count for c in chunks] == [100] * 10 + [1]
    assert sum(c.count for c in chunks) == 1001 and chunks[-1].start == 1000


def test_a_failed_run_resumes_without_redoing_finished_chunks(tmp_path: Path) -> None:
    params = {"n": 50, "size": 10, "fail_at": 3}
    root = tmp_path / "jobs" / job_id_for("test-squares", params)
    root.mkdir(parents=True)
    (root / "fail-once").write_text("")
    with pytest.raises(RuntimeError):
        _run(tmp_path, params)
    assert json.loads((root / "job.json").read_text())["state"] == "interrupted"
    result = _run(tmp_path, params)
    assert result.chunks_resumed == 3 and result.chunks_run == 2
    assert result.output == "\n".join(str(i * i) for i in range(50))
    assert json.loads((root / "job.json").read_text())["state"] == "completed"
    assert all((root / f"runs-{i}").read_text() == "1" for i in range(5))  # nothing done twice
    progress: list[tuple[int, int]] = []
    again = _run(tmp_path, params, progress=lambda done, total: progress.append((done, total)))
    assert again.chunks_resumed == 5 and progress == [(50, 50)]


def test_same_parameters_same_job_other_parameters_other_job(tmp_path: Path) -> None:
    a = _run(tmp_path, {"n": 5, "size": 2, "fail_at": -1})
    b = _run(tmp_path, {"n": 6, "size": 2, "fail_at": -1})
    assert a.job_id != b.job_id and a.job_id == _run(tmp_path, {"n": 5, "size": 2, "fail_at": -1}).job_id


@pytest.mark.parametrize("executor, workers", [("local", 1), ("local", 2)])
def test_population_bytes_do_not_depend_on_executor_or_workers(
    tmp_path: Path, executor: str, workers: int
) -> None:
    def params(out: Path) -> dict[str, Any]:
        return {
            "size": 120,
            "seed": 8,
            "format": "jsonl",
            "id_prefix": "P",
            "plant_pii": False,
            "chunk_size": 25,
            "out": str(out),
        }

    reference = tmp_path / "ref.jsonl"
    run_job(
        PopulationToFile(), params(reference), data_dir=tmp_path, database_url="sqlite://", executor="inline"
    )
    other = tmp_path / f"{executor}-{workers}.jsonl"
    result = run_job(
        PopulationToFile(),
        params(other),
        data_dir=tmp_path,
        database_url="sqlite://",
        executor=executor,
        workers=workers,
    )
    assert other.read_bytes() == reference.read_bytes()
    assert result.chunks == 5 and not list((tmp_path / "jobs" / result.job_id / "chunks").iterdir())


class MathThreads(JobKind):
    """Writes, per chunk, the math-library thread count its worker process was started with."""

    name = "test-math-threads"
    tuning = frozenset({"note"})

    def chunks(self, params: dict[str, Any]) -> list[Chunk]:
        return even_chunks(2, 1)

    def run_chunk(self, params: dict[str, Any], chunk: Chunk, ctx: JobContext) -> ChunkReport:
        import os

        seen = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        (ctx.job_dir / "chunks" / f"{chunk.index}.json").write_text(json.dumps(seen))
        return ChunkReport(index=chunk.index, items=1)

    def is_done(self, params: dict[str, Any], chunk: Chunk, ctx: JobContext) -> bool:
        return (ctx.job_dir / "chunks" / f"{chunk.index}.json").exists()


def test_local_workers_share_the_cores_and_tuning_is_not_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each spawned worker gets cpus / workers math threads (not every core each: they spin and starve one
    another); the parent's own environment is left as it was. A tuning parameter is not part of the id."""
    import os

    from medfusion.jobs.executors import worker_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    first = run_job(
        MathThreads(), {"note": 1}, data_dir=tmp_path, database_url="sqlite://", executor="local", workers=2
    )
    share = worker_threads(2)["OMP_NUM_THREADS"]
    for index in (0, 1):
        seen = json.loads((tmp_path / "jobs" / first.job_id / "chunks" / f"{index}.json").read_text())
        assert seen == {"OMP_NUM_THREADS": share, "OPENBLAS_NUM_THREADS": share}
    assert os.environ["OMP_NUM_THREADS"] == "7" and "OPENBLAS_NUM_THREADS" not in os.environ
    again = run_job(
        MathThreads(), {"note": 2}, data_dir=tmp_path, database_url="sqlite://", executor="inline"
    )
    assert again.job_id == first.job_id and again.chunks_resumed == 2
