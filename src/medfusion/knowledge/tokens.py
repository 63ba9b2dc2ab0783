"""Chinese tokens for BM25, two channels: words (jieba-next, with a medical user dictionary) and character
bigrams (robust to segmentation errors). Numbers and units stay whole words.

The medical dictionary is the vocabulary of the knowledge packs shipped in the repo — disease, drug,
class, symptom and check names and their synonyms (~2,600 words) — so 沙库巴曲缬沙坦 stays one token.
It is fixed by the code's version, not by what a user imported, so tokens stored at ingest and tokens
of a query always agree (measured on triage_toyhom_im: words channel recall@10 0.324 → 0.326).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path

_CJK = re.compile(r"[\u4e00-\u9fa5]+")
_STOP_WORDS = (
    "的 了 是 我 你 他 她 它 吗 呢 吧 啊 在 有 和 与 及 或 也 都 就 还 要 会 能 可以 怎么 什么 如何 请问 "
    "医生 您好 谢谢 一下 一个 这个 那个 这样 没有 现在 因为 所以 但是 如果 就是 已经"
)
_STOP = frozenset(_STOP_WORDS.split())


PACKS = Path(__file__).resolve().parent.parent / "packs"


def medical_words(packs: Path = PACKS) -> set[str]:
    """Names and synonyms from the shipped packs' vocabularies and disease entries."""
    names: set[str] = set()
    for path in sorted(packs.glob("*/vocabulary.csv")):
        with path.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                names.add(row["name"])
                names.update(s for s in (row.get("synonyms") or "").split("|") if s)
    for path in sorted(packs.glob("*/diseases.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                names.update([entry["name"], *entry.get("synonyms", []), *entry.get("symptoms", [])])
                names.update([*entry.get("checks", []), *entry.get("drugs", [])])
    return {n for n in names if 2 <= len(n) <= 12 and _CJK.search(n) and not re.search(r"\s", n)}


@lru_cache(maxsize=1)
def signature() -> str:
    """Changes whenever the word channel would cut text differently: the segmenter and the dictionary."""
    from importlib.metadata import version

    digest = hashlib.sha256("\n".join(sorted(medical_words())).encode()).hexdigest()[:16]
    return f"jieba-next {version('jieba-next')} + medical {digest}"


@lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    import jieba_next

    for word in sorted(medical_words()):
        jieba_next.add_word(word, freq=2000)
    return jieba_next


def words(text: str) -> list[str]:
    return [
        w.lower() for w in _jieba().cut(text) if w.strip() and w not in _STOP and not re.fullmatch(r"\W+", w)
    ]


def bigrams(text: str) -> list[str]:
    out: list[str] = []
    for run in _CJK.findall(text):
        if len(run) == 1:
            out.append(run)
        out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out
