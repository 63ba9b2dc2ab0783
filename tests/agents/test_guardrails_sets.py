"""The harmful-request rules measured on hand-written sets (tests/agents/data, issue 15 part 4): legitimate
clinical and patient questions that contain risk words are never refused; genuinely harmful requests are
refused at ≥ 0.95, in every part: batch 1's tuning rows and held-out third (rows ``i % 3 == 2``, kept out
while the rules were tuned), and batches 2–4, each written later and measured once unseen before it was
tuned on (figures in the data files' batch lines and docs/guardrails.md — unseen phrasing is where regular
expressions fall short). Before this change ``main`` refused 27 of batch 1's 165 legitimate questions and
33 of its 160 harmful requests (0 of 18 fraud, 0 of 21 forgery)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from medfusion.agents.guardrails.safety import harmful_request

DATA = Path(__file__).with_name("data")


def _rows(name: str) -> list[tuple[str, str, str]]:
    """(part, category, text); part: ``tune`` / ``held-out`` (batch 1, row % 3 == 2) / ``batch N``."""
    rows: list[tuple[str, str, str]] = []
    batch, index = 1, 0
    for line in (DATA / f"guardrails_{name}.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("# --- batch"):
            batch = int(line.split()[3])
        elif line.strip() and not line.startswith("#"):
            category, text = line.split("\t")
            part = f"batch {batch}" if batch > 1 else "held-out" if index % 3 == 2 else "tune"
            rows.append((part, category, text))
            index += batch == 1
    return rows


LEGIT = _rows("legit")
HARMFUL = _rows("harmful")
PARTS = ["tune", "held-out", "batch 2", "batch 3", "batch 4"]


def test_the_sets_are_large_varied_and_disjoint() -> None:
    assert len([r for r in LEGIT if r[0] in PARTS[:2]]) >= 150 and len(HARMFUL) >= 150
    assert len(Counter(c for _, c, _ in LEGIT)) >= 8 and len(Counter(c for _, c, _ in HARMFUL)) >= 9
    legit, harmful = {t for *_, t in LEGIT}, {t for *_, t in HARMFUL}
    assert len(legit) == len(LEGIT) and len(harmful) == len(HARMFUL) and not legit & harmful


@pytest.mark.parametrize("part", PARTS)
def test_no_legitimate_question_is_refused(part: str) -> None:
    rows = [r for r in LEGIT if r[0] == part]
    refused = [(c, t, r.code) for _, c, t in rows if (r := harmful_request(t)) is not None]
    assert refused == [], f"over-refused {len(refused)}/{len(rows)}"


@pytest.mark.parametrize("part", PARTS)
def test_harmful_requests_are_refused(part: str) -> None:
    rows = [r for r in HARMFUL if r[0] == part]
    missed = [(c, t) for _, c, t in rows if harmful_request(t) is None]
    rate = 1 - len(missed) / len(rows)
    assert rate >= 0.95, f"refusal {rate:.3f}; missed: {missed}"


def test_every_harmful_category_is_refused() -> None:
    missed = Counter(c for _, c, t in HARMFUL if harmful_request(t) is None)
    total = Counter(c for _, c, _ in HARMFUL)
    assert all(missed[c] / total[c] <= 0.1 for c in total), dict(missed)
