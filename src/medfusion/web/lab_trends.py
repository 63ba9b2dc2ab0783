"""Lab trends for the chart page: one line per lab test (LOINC code, else name) with its latest result and,
for a test measured at least twice, a small server-rendered SVG sparkline — the recorded reference range as
a band, abnormal results marked, value labels with the unit and the first and last dates in the display zone.
Results in another unit than the latest one are not drawn on its scale (they are counted)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from medfusion.record.clinical_time import aware, display_zone, sort_time
from medfusion.record.models import Observation, ObservationCategory
from medfusion.web.chart_axes import LinearScale, TimeScale, fmt_value

__all__ = ["LabTrend", "lab_trends", "reference_text", "sparkline_svg"]

WIDTH, HEIGHT = 220, 74
LEFT, RIGHT, TOP, BOTTOM = 34, 8, 8, 18
BAND = "#e5f3e9"
BAND_EDGE = "#8fc59d"
LINE = "#0b6e99"
BAD = "#b03a2e"
AXIS = "#525e6c"


@dataclass(frozen=True)
class LabTrend:
    key: str
    name: str
    unit: str | None
    latest: Observation
    results: int  # every result of this test
    drawn: int  # numeric results in ``unit`` with a time (the sparkline's points)
    first: datetime | None
    last: datetime | None
    svg: str | None  # None: fewer than two drawable results


def reference_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{fmt_value(low)}–{fmt_value(high)}"
    if high is not None:
        return f"<{fmt_value(high)}"
    if low is not None:
        return f"≥{fmt_value(low)}"
    return ""


def _date(when: datetime, with_year: bool) -> str:
    return when.astimezone(display_zone()).strftime("%Y-%m-%d" if with_year else "%m-%d")


@dataclass(frozen=True)
class _Point:
    when: datetime
    value: float
    abnormal: bool


def sparkline_svg(name: str, unit: str | None, points: Sequence[Observation], dom_id: str) -> str | None:
    """A sparkline of ``points`` (results of one test, oldest first), or ``None`` below two drawable ones;
    the band is the latest drawable result's reference range."""
    usable = [
        p for p in points if p.value is not None and math.isfinite(p.value) and p.effective_at is not None
    ]
    drawn = [
        _Point(aware(p.effective_at), float(p.value), p.is_abnormal)
        for p in points
        if p.value is not None and math.isfinite(p.value) and p.effective_at is not None
    ]
    if len(drawn) < 2:
        return None
    low, high = usable[-1].reference_low, usable[-1].reference_high
    values = [p.value for p in drawn]
    bounds = [v for v in (low, high) if v is not None and math.isfinite(v)]
    y = LinearScale.covering([*values, *bounds], HEIGHT - BOTTOM, TOP, count=5)
    x = TimeScale.covering([p.when for p in drawn], LEFT, WIDTH - RIGHT)
    unit_text = f" {unit}" if unit else ""
    title_id, desc_id = f"{dom_id}-title", f"{dom_id}-desc"
    first_at, last_at = drawn[0].when, drawn[-1].when
    with_year = (last_at - first_at).days > 300 or first_at.year != last_at.year
    reference = reference_text(low, high)
    desc = (
        f"{name} {len(drawn)} 次，{fmt_value(min(values))}–{fmt_value(max(values))}{unit_text}，"
        f"最近 {fmt_value(values[-1])}{unit_text}（{_date(last_at, True)}）"
        + (f"；参考范围 {reference}{unit_text}" if reference else "；无参考范围")
        + f"；异常 {sum(p.abnormal for p in drawn)} 次"
    )
    out = [
        f'<svg class="chart sparkline" role="img" aria-labelledby="{title_id} {desc_id}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" font-size="10">',
        f'<title id="{title_id}">{escape(name)}趋势</title><desc id="{desc_id}">{escape(desc)}</desc>',
    ]
    if bounds:
        band_top = y(high) if high is not None else TOP
        band_bottom = y(low) if low is not None else HEIGHT - BOTTOM
        out.append(
            f'<rect class="ref-band" x="{LEFT}" y="{band_top:.1f}" width="{WIDTH - LEFT - RIGHT}" '
            f'height="{max(band_bottom - band_top, 0.5):.1f}" fill="{BAND}" stroke="{BAND_EDGE}" '
            f'stroke-width="0.5"><title>参考范围 {escape(reference + unit_text)}</title></rect>'
        )
    base = HEIGHT - BOTTOM
    out.append(
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{base}" stroke="{AXIS}" stroke-width="0.75"/>'
        f'<text x="{LEFT - 3}" y="{TOP + 7}" text-anchor="end" fill="{AXIS}">{fmt_value(y.high)}</text>'
        f'<text x="{LEFT - 3}" y="{base}" text-anchor="end" fill="{AXIS}">{fmt_value(y.low)}</text>'
        f'<text x="{LEFT}" y="{HEIGHT - 4}" fill="{AXIS}">{_date(first_at, with_year)}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 4}" text-anchor="end" fill="{AXIS}">'
        f"{_date(last_at, with_year)}</text>"
    )
    path = " ".join(f"{x(p.when):.1f},{y(p.value):.1f}" for p in drawn)
    out.append(f'<polyline fill="none" stroke="{LINE}" stroke-width="1.5" points="{path}"/>')
    for p in drawn:
        colour, radius = (BAD, 3.2) if p.abnormal else (LINE, 2.4)
        mark = " 异常" if p.abnormal else ""
        label = escape(f"{fmt_value(p.value)}{unit_text} · {_date(p.when, True)}{mark}")
        out.append(
            f'<circle cx="{x(p.when):.1f}" cy="{y(p.value):.1f}" r="{radius}" fill="{colour}">'
            f"<title>{label}</title></circle>"
        )
    out.append("</svg>")
    return "".join(out)


def lab_trends(observations: Sequence[Observation]) -> list[LabTrend]:
    """One trend per lab test, the most recently measured first."""
    groups: dict[str, list[Observation]] = {}
    for o in observations:
        if o.category is ObservationCategory.laboratory:
            groups.setdefault(o.loinc_code or o.name, []).append(o)
    trends = []
    for index, (key, results) in enumerate(groups.items()):
        ordered = sorted(results, key=lambda o: sort_time(o.effective_at))
        latest = ordered[-1]
        unit = latest.unit
        drawable = [
            o
            for o in ordered
            if o.unit == unit and o.value is not None and math.isfinite(o.value) and o.effective_at
        ]
        times = [o.effective_at for o in ordered if o.effective_at is not None]
        trends.append(
            LabTrend(
                key=key,
                name=latest.name,
                unit=unit,
                latest=latest,
                results=len(ordered),
                drawn=len(drawable),
                first=min(times) if times else None,
                last=max(times) if times else None,
                svg=sparkline_svg(latest.name, unit, drawable, f"lab-trend-{index}"),
            )
        )
    return sorted(trends, key=lambda t: sort_time(t.last), reverse=True)
