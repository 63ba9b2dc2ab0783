"""Scales and ticks for the server-rendered SVG charts (vitals panels, lab sparklines): a value axis with
"nice" steps (1, 2, 5 × 10ⁿ) and a time axis whose ticks fall on whole hours, days, months or years in the
display zone, so a chart's dates read the same as every other time on the page."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from medfusion.record.clinical_time import aware, display_zone

__all__ = ["LinearScale", "TimeScale", "fmt_value", "nice_ticks", "time_ticks"]


def fmt_value(value: float) -> str:
    """A measured value as shown on an axis or in a label: up to 4 significant digits, no trailing zeros."""
    return f"{value:.4g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round values covering [low, high] (the first ≤ low, the last ≥ high)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high < low:
        low, high = high, low
    magnitude_of_values = max(abs(low), abs(high))
    # one value, or ones floats cannot tell apart (a span of subnormals would make the step 0): pad it
    if high - low <= max(magnitude_of_values * 1e-9, 1e-9):
        pad = max(magnitude_of_values * 0.1, 1e-9) if magnitude_of_values >= 1e-8 else 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    digits = max(0, 2 - math.floor(math.log10(step)))  # enough decimals for the step, no float dust
    first = round(math.floor(low / step) * step, digits)
    if first > low:  # low / step underflowed to -0.0 (a negative subnormal low): one step further down
        first = round(first - step, digits)
    ticks = [first]
    while ticks[-1] < high and len(ticks) < 50:
        ticks.append(round(ticks[-1] + step, digits))
    return ticks


@dataclass(frozen=True)
class LinearScale:
    """Values in [low, high] onto pixels [bottom, top] (SVG y grows downwards)."""

    low: float
    high: float
    bottom: float
    top: float

    @classmethod
    def covering(cls, values: Iterable[float], bottom: float, top: float, count: int = 5) -> LinearScale:
        finite = [v for v in values if math.isfinite(v)]
        ticks = nice_ticks(min(finite, default=0.0), max(finite, default=1.0), count)
        return cls(ticks[0], ticks[-1], bottom, top)

    def __call__(self, value: float) -> float:
        span = self.high - self.low
        if span <= 0:
            return (self.bottom + self.top) / 2
        return self.bottom + (value - self.low) / span * (self.top - self.bottom)

    def ticks(self, count: int = 5) -> list[float]:
        return [t for t in nice_ticks(self.low, self.high, count) if self.low <= t <= self.high]


@dataclass(frozen=True)
class TimeScale:
    """Instants in [start, end] onto pixels [left, right]; a single instant sits in the middle."""

    start: datetime
    end: datetime
    left: float
    right: float

    @classmethod
    def covering(cls, instants: Iterable[datetime], left: float, right: float) -> TimeScale:
        times = sorted(aware(t) for t in instants)
        if not times:
            now = datetime.now(display_zone())
            return cls(now - timedelta(hours=12), now + timedelta(hours=12), left, right)
        start, end = times[0], times[-1]
        if end - start < timedelta(hours=1):  # one moment (or several at once): a day around it
            start, end = start - timedelta(hours=12), end + timedelta(hours=12)
        else:  # a little air so the first and last points are not on the frame
            pad = (end - start) * 0.04
            start, end = start - pad, end + pad
        return cls(start, end, left, right)

    def __call__(self, when: datetime) -> float:
        span = (self.end - self.start).total_seconds()
        offset = (aware(when) - self.start).total_seconds()
        return self.left + (offset / span if span > 0 else 0.5) * (self.right - self.left)


_STEPS: tuple[tuple[str, int], ...] = (
    ("hour", 1),
    ("hour", 3),
    ("hour", 6),
    ("hour", 12),
    ("day", 1),
    ("day", 2),
    ("day", 7),
    ("day", 14),
    ("month", 1),
    ("month", 2),
    ("month", 3),
    ("month", 6),
    ("year", 1),
    ("year", 2),
    ("year", 5),
    ("year", 10),
    ("year", 25),
    ("year", 50),
)


def _floor(when: datetime, unit: str, n: int) -> datetime:
    if unit == "hour":
        return when.replace(minute=0, second=0, microsecond=0, hour=when.hour - when.hour % n)
    if unit == "day":
        return when.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "month":
        month = (when.month - 1) - (when.month - 1) % n + 1
        return when.replace(day=1, month=month, hour=0, minute=0, second=0, microsecond=0)
    year = when.year - when.year % n
    return when.replace(year=year, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)


def _advance(when: datetime, unit: str, n: int, zone: ZoneInfo) -> datetime:
    if unit == "hour":
        return (when.astimezone(zone) + timedelta(hours=n)).astimezone(zone)
    if unit == "day":
        naive = when.replace(tzinfo=None) + timedelta(days=n)
        return naive.replace(tzinfo=zone)
    if unit == "month":
        months = when.year * 12 + when.month - 1 + n
        return when.replace(year=months // 12, month=months % 12 + 1)
    return when.replace(year=when.year + n)


def _label(when: datetime, unit: str, span: timedelta) -> str:
    if unit == "hour":
        return when.strftime("%m-%d %H:%M")
    if unit == "day":
        return when.strftime("%Y-%m-%d" if span > timedelta(days=300) else "%m-%d")
    if unit == "month":
        return when.strftime("%Y-%m")
    return when.strftime("%Y")


def time_ticks(scale: TimeScale, max_ticks: int = 5) -> list[tuple[datetime, str]]:
    """Ticks on whole hours, days, months or years in the display zone, at most ``max_ticks``, each with
    its label (e.g. ``03-14`` within a year, ``2024-03`` over months)."""
    zone = display_zone()
    start, end = scale.start.astimezone(zone), scale.end.astimezone(zone)
    span = end - start
    for unit, n in _STEPS:
        approx = {"hour": 3600, "day": 86400, "month": 2_629_746, "year": 31_556_952}[unit] * n
        if span.total_seconds() / approx > max_ticks:
            continue
        tick = _floor(start, unit, n)
        ticks: list[tuple[datetime, str]] = []
        while tick <= end and len(ticks) <= max_ticks:
            if tick >= start:
                ticks.append((tick, _label(tick, unit, span)))
            tick = _advance(tick, unit, n, zone)
        if ticks:
            return ticks
    return [(start + span / 2, (start + span / 2).strftime("%Y-%m-%d"))]
