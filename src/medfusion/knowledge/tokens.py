"""Chinese tokens for BM25, two channels: words (jieba-next) and character bigrams (robust to segmentation
errors). Numbers and units stay whole words.

A medical user dictionary — the vocabulary of the knowledge packs shipped in the repo, ~2,600 disease, drug,
class, symptom and check names — keeps terms such as 沙库巴曲缬沙坦 whole. It is **off by default** because it
measured worse on our data (triage_toyhom_im, served knowledge base: words channel recall@10 0.322 → 0.306,
sparse hybrid 0.338 → 0.324, full hybrid 0.424 either way — a compound token no longer matches a question
that names its parts); ``MEDFUSION_KB_MEDICAL_DICTIONARY=true`` turns it on. The tokeniser's signature is
stored with the index, so switching re-tokenises stored chunks once and stored and query tokens agree.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path

from medfusion.cjk import CJK
from medfusion.cjk import bigrams as bigrams  # the BM25 bigram channel is the shared CJK bigram

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
                names.update(
                    [*entry.get("checks", []), *entry.get("drugs", []), *entry.get("procedures", [])]
                )
    return {n for n in names if 2 <= len(n) <= 12 and CJK.search(n) and not re.search(r"\s", n)}


def _dictionary() -> set[str]:
    from medfusion.settings import get_settings

    return medical_words() if get_settings().kb_medical_dictionary else set()


@lru_cache(maxsize=1)
def signature() -> str:
    """Changes whenever the word channel would cut text differently: the segmenter and the dictionary."""
    from importlib.metadata import version

    words = _dictionary()
    digest = hashlib.sha256("\n".join(sorted(words)).encode()).hexdigest()[:16] if words else "none"
    return f"jieba-next {version('jieba-next')} + dictionary {digest}"


@lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    import jieba_next

    for word in sorted(_dictionary()):
        jieba_next.add_word(word, freq=2000)
    return jieba_next


def words(text: str) -> list[str]:
    return [
        w.lower() for w in _jieba().cut(text) if w.strip() and w not in _STOP and not re.fullmatch(r"\W+", w)
    ]
