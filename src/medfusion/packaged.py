"""Data files shipped inside the package (rules, intents, pools, rubrics, grades, prompts): knowledge kept as
data, read the same way everywhere."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any


def toml(package: str, *path: str) -> dict[str, Any]:
    """``package``'s file at ``path`` (e.g. ``toml("medfusion.llm", "prompts", "agent.toml")``), parsed."""
    source = resources.files(package).joinpath(*path)
    data: dict[str, Any] = tomllib.loads(source.read_text(encoding="utf-8"))
    return data
