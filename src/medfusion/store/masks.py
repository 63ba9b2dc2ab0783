"""Partial display of an identifier — the one mask the display policy (:mod:`store.display`) and import
conflict messages (:mod:`store.chart_merge`) both use. A leaf: it imports nothing of ours."""

from __future__ import annotations


def mask_middle(value: str, keep_start: int, keep_end: int) -> str:
    """``310106********0010``-style partial display (GB/T 35273-2020 附录A)."""
    hidden = len(value) - keep_start - keep_end
    return value if hidden <= 0 else value[:keep_start] + "*" * hidden + value[len(value) - keep_end :]
