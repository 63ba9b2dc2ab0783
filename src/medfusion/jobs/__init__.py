"""Chunked, checkpointed, resumable batch work on local processes or Ray — one job code for both."""

from medfusion.jobs.model import Chunk, ChunkReport, JobKind, JobResult
from medfusion.jobs.runner import run_job

__all__ = ["Chunk", "ChunkReport", "JobKind", "JobResult", "run_job"]
