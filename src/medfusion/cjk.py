"""Chinese text basics every layer uses alike: runs of CJK characters and their character bigrams (the
unit of Chinese lexical matching here: retrieval's BM25 channel and the feedback prior's question
similarity)."""

from __future__ import annotations

import re

CJK = re.compile(r"[\u4e00-\u9fa5]+")


def bigrams(text: str) -> list[str]:
    """Overlapping character bigrams of each CJK run (a one-character run stands as itself)."""
    out: list[str] = []
    for run in CJK.findall(text):
        if len(run) == 1:
            out.append(run)
        out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out
