"""A run's result — what ``results.json`` holds — shared by the runner that writes it and the reports that
read it (so neither imports the other for the type)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from medfusion.errors import InvalidInput
from medfusion.evaluation.scoring import DatasetResult


class RunResult(BaseModel):
    suite: str
    dimension: str
    target: str
    target_kind: str
    models: dict[str, str]
    seed: int
    limit: int | None
    code_version: str
    grading_version: str
    judge: str = "rules"
    started_at: datetime
    finished_at: datetime
    datasets: list[DatasetResult]
    grade: str | None
    # items answered by an earlier run of the same job: resumed after a crash, or the result cache
    cached_items: int = 0
    executor: str = "inline"
    jobs: list[str] = Field(default_factory=list)  # job ids under MEDFUSION_DATA_DIR/jobs/


def read(folder: Path) -> RunResult:
    path = folder / "results.json"
    if not path.exists():
        raise InvalidInput.for_field(str(folder), "不是评测结果目录 no results.json here")
    try:
        return RunResult.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as error:  # pydantic's ValidationError is a ValueError: damaged or not ours
        raise InvalidInput.for_field(
            str(folder),
            f"评测结果无法读取 results.json is damaged or not a run: {str(error).splitlines()[0]}",
        ) from None
