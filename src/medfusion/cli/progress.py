"""A progress bar on stderr for long jobs (rich), silent when disabled or not on a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


@contextmanager
def job_progress(label: str, *, enabled: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def run_cli_job(
    kind: Any,
    params: dict[str, Any],
    label: str,
    *,
    executor: Any = "local",
    workers: int | None = None,
    show: bool = True,
) -> Any:
    """Run a job from a command with the standard progress bar, on this installation's data and database."""
    from medfusion.jobs import run_job
    from medfusion.settings import get_settings
    from medfusion.store.database import get_database

    settings = get_settings()
    database = get_database(settings)  # migrated before any worker starts
    with job_progress(label, enabled=show) as progress:
        return run_job(
            kind,
            params,
            data_dir=settings.resolved_data_dir,
            database_url=database.url,
            executor=executor,
            workers=workers,
            progress=progress,
        )
