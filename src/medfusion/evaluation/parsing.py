"""Reading a model's answer to a multiple-choice question robustly: 答案：AC, 选A和C, (B), "B. 出血部位",
a bare letter, or the option's own text when no letter is given."""

from __future__ import annotations

import re

_MARKED = re.compile(
    r"(?:答案|正确答案|正确选项|选项|answer)\s*(?:是|为|应为|:|：)?\s*[（(]?([A-Ha-h](?:\s*[、,，和及/与]?\s*[A-Ha-h])*)"
)
_LEAD = re.compile(r"^\s*[（(\[]?([A-Ha-h](?:\s*[、,，和及/与]?\s*[A-Ha-h])*)[)）\]]?(?:[.、．:：\s]|$)")
_CHOOSE = re.compile(r"选\s*[（(]?([A-Ha-h](?:\s*[、,，和及/与]?\s*[A-Ha-h])*)")


def letters(text: str, options: dict[str, str]) -> list[str]:
    valid = set(options)
    for pattern in (_MARKED, _LEAD, _CHOOSE):
        found = pattern.search(text)
        if found:
            picked = [c.upper() for c in found.group(1) if c.upper() in valid]
            if picked:
                return sorted(set(picked))
    # no letter: an option quoted whole (the longest, so 出血部位 beats 出血)
    quoted = [k for k, v in sorted(options.items(), key=lambda kv: -len(kv[1])) if v and v in text]
    return quoted[:1]
