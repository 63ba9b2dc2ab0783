"""Chinese tokens for BM25, two channels: words (jieba-next, with a medical user dictionary when one is
available) and character bigrams (robust to segmentation errors). Numbers and units stay whole words."""

from __future__ import annotations

import re
from functools import lru_cache

_CJK = re.compile(r"[\u4e00-\u9fa5]+")
_STOP_WORDS = (
    "的 了 是 我 你 他 她 它 吗 呢 吧 啊 在 有 和 与 及 或 也 都 就 还 要 会 能 可以 怎么 什么 如何 请问 "
    "医生 您好 谢谢 一下 一个 这个 那个 这样 没有 现在 因为 所以 但是 如果 就是 已经"
)
_STOP = frozenset(_STOP_WORDS.split())


@lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    import jieba_next

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
