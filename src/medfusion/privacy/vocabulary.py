"""The do-not-touch vocabulary: clinical terms that must survive de-identification even though they begin
with a surname character (陈皮, 黄芩, 高血压) or look like a place. Our own list ships in
``data/protected_terms.txt`` (sources cited there); when ``MEDFUSION_SHARED_DATA/medical_kg/dict`` is present,
its drug, disease, symptom and check lists are added."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from medfusion.settings import get_settings

_OWN = Path(__file__).with_name("data") / "protected_terms.txt"
_SHARED_LISTS = ("drug.txt", "disease.txt", "symptom.txt", "check.txt")


def _read_terms(path: Path) -> set[str]:
    terms = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        term = line.strip()
        if term and not term.startswith("#") and len(term) >= 2:
            terms.add(term)
    return terms


@lru_cache(maxsize=4)
def protected_terms(shared_data: Path | None = None) -> frozenset[str]:
    terms = _read_terms(_OWN)
    folder = (shared_data or get_settings().shared_data) / "medical_kg" / "dict"
    if folder.is_dir():
        for name in _SHARED_LISTS:
            if (folder / name).exists():
                terms |= _read_terms(folder / name)
    return frozenset(terms)


def by_first_character(terms: frozenset[str]) -> dict[str, tuple[str, ...]]:
    index: dict[str, list[str]] = {}
    for term in terms:
        index.setdefault(term[0], []).append(term)
    return {first: tuple(sorted(group, key=len, reverse=True)) for first, group in index.items()}
