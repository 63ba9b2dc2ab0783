"""Translating a diagnosis or procedure coded in another system to the record's ICD-10 / ICD-9-CM-3.

The default :class:`TableMapper` reads ``code_maps.toml`` (a cited SNOMED CT subset, review status in the
file). Callers that hold more knowledge — the knowledge graph's lexicon, which resolves Chinese and English
names to entities with ICD-10 codes — pass their own :class:`CodeMapper`; interop cannot import the graph
(it sits above the data layer), so the mapper is handed in. Nothing found → ``None`` and the item is kept
``unmapped`` with its codings.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Literal, Protocol

from medfusion.record.codes import check_icd9cm3, check_icd10

SNOMED_SYSTEM = "http://snomed.info/sct"

Target = Literal["icd10", "icd9cm3"]


class CodeMapper(Protocol):
    def __call__(self, target: Target, codings: list[dict[str, str]], text: str | None) -> str | None:
        """The target code for these source codings (and text), or ``None``."""
        ...


@cache
def _tables() -> dict[str, dict[str, str]]:
    raw = tomllib.loads(resources.files(__package__).joinpath("code_maps.toml").read_text(encoding="utf-8"))
    tables: dict[str, dict[str, str]] = {}
    for target, key, check in (
        ("icd10", "snomed_icd10", check_icd10),
        ("icd9cm3", "snomed_icd9cm3", check_icd9cm3),
    ):
        tables[target] = {str(code): check(str(value[0])) for code, value in raw[key].items()}
    return tables


def map_source() -> str:
    raw = tomllib.loads(resources.files(__package__).joinpath("code_maps.toml").read_text(encoding="utf-8"))
    return str(raw["source"]["name"])


class TableMapper:
    """SNOMED CT → ICD-10 / ICD-9-CM-3 by exact concept id from ``code_maps.toml``."""

    def __call__(self, target: Target, codings: list[dict[str, str]], text: str | None) -> str | None:
        table = _tables()[target]
        for coding in codings:
            if coding.get("system") == SNOMED_SYSTEM and str(coding.get("code")) in table:
                return table[str(coding["code"])]
        return None
