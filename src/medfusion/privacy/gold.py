"""Gold sets for measuring de-identification: our hand-written hard cases (``data/hard_cases.txt``). The
other gold set, the synthetic population's planted identifiers (``medfusion synth population --plant-pii``),
is built in :mod:`medfusion.evaluation.deid_gold`: nothing in the data layer imports ``synth``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

HARD_CASES = Path(__file__).with_name("data") / "hard_cases.txt"
_MARK = re.compile(r"\{\{([A-Z_]+)\|(.*?)\}\}")

GoldDoc = tuple[str, list[dict[str, Any]], tuple[str, ...]]  # text, spans, names known from the record


def parse_marked(line: str) -> tuple[str, list[dict[str, Any]]]:
    text: list[str] = []
    spans: list[dict[str, Any]] = []
    position = length = 0
    for match in _MARK.finditer(line):
        before = line[position : match.start()]
        text.append(before)
        length += len(before)
        value = match.group(2)
        spans.append({"start": length, "end": length + len(value), "type": match.group(1), "text": value})
        text.append(value)
        length += len(value)
        position = match.end()
    text.append(line[position:])
    return "".join(text), spans


def hard_cases(path: Path = HARD_CASES) -> list[GoldDoc]:
    docs: list[GoldDoc] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            text, spans = parse_marked(line)
            docs.append((text, spans, ()))
    return docs
