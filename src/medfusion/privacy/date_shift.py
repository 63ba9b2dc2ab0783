"""Move a written date by a number of days and write it back in the same shape (``2024年3月1日`` stays
``YYYY年M月D日``, ``2024-03-01`` keeps its zero padding), so intervals between a patient's dates survive
pseudonymisation. Month-only dates move with the 15th of their month; dates without a year use a non-leap
year (a leap year for 2月29日)."""

from __future__ import annotations

import re
from datetime import date, timedelta

from medfusion.privacy.recognizers.dates import DATE_PATTERNS

_NUMERIC = (0, 3, 4)  # indices of DATE_PATTERNS written only with digits and separators


def _render(value: int, original: str, pad: bool) -> str:
    return f"{value:02d}" if pad or original.startswith("0") else str(value)


def shift_date(text: str, days: int) -> str | None:
    """The shifted text, or None when the text is not a date we can rewrite (callers then tag it)."""
    for index, pattern in enumerate(DATE_PATTERNS):
        match = pattern.fullmatch(text)
        if match is None:
            continue
        groups = match.groupdict()
        has_year, has_day = groups.get("y") is not None, groups.get("d") is not None
        month = int(groups["m"])
        day = int(groups["d"]) if has_day else 15
        year = int(groups["y"]) if has_year else (2000 if (month, day) == (2, 29) else 2001)
        try:
            moved = date(year, month, day) + timedelta(days=days)
        except ValueError:
            return None
        out = list(text)
        values = {"y": moved.year, "m": moved.month, "d": moved.day}
        present = [name for name in ("y", "m", "d") if groups.get(name) is not None]
        # 2024-12-31 is zero-padded ISO style; 2024年12月31日 is not padded unless it shows a zero
        pad = index in _NUMERIC and all(len(groups[n]) == 2 for n in present if n != "y")
        for name in sorted(present, key=lambda n: -match.start(n)):
            value = values[name]
            start, end = match.start(name), match.end(name)
            out[start:end] = list(_render(value, text[start:end], pad) if name != "y" else str(value))
        return "".join(out)
    return None


def year_only(text: str) -> str | None:
    found = re.search(r"(18|19|20)\d{2}", text)
    return f"{found.group()}年" if found else None
