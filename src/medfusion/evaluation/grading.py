"""Grades A/B/C/D from metrics, by the versioned thresholds in ``grading.toml``."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from medfusion import packaged

ORDER = "ABCD"


@lru_cache(maxsize=1)
def thresholds() -> dict[str, Any]:
    return packaged.toml("medfusion.evaluation", "grading.toml")


def grade(dimension: str, metric: str, value: float) -> str | None:
    """The letter for one metric, or None when the dimension does not grade that metric."""
    bounds = thresholds()["dimension"].get(dimension, {}).get("metrics", {}).get(metric)
    if bounds is None:
        return None
    lower = bool(bounds.get("lower_is_better"))
    for letter in "ABC":
        if (value <= bounds[letter]) if lower else (value >= bounds[letter]):
            return letter
    return "D"


def worst(letters: list[str]) -> str | None:
    return max(letters, key=ORDER.index) if letters else None
