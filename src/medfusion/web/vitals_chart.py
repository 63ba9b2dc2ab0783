"""A vitals trend as inline SVG, drawn on the server — no JavaScript charting library to download."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape

from medfusion.record.models import Observation

SERIES = (("收缩压", "#c0392b"), ("舒张压", "#2471a3"), ("心率", "#7d8a2e"))
WIDTH, HEIGHT, PAD = 640, 220, 36


@dataclass(frozen=True)
class Point:
    when: datetime
    value: float


def series(observations: list[Observation]) -> dict[str, list[Point]]:
    found: dict[str, list[Point]] = {name: [] for name, _ in SERIES}
    for o in observations:
        if o.name in found and o.value is not None and o.effective_at is not None:
            found[o.name].append(Point(o.effective_at, o.value))
    return {name: sorted(points, key=lambda p: p.when) for name, points in found.items() if points}


def vitals_svg(observations: list[Observation]) -> str | None:
    """Blood pressure and heart rate over time; the 140/90 mmHg lines mark the hypertension thresholds
    (《中国高血压防治指南（2018年修订版）》)."""
    data = series(observations)
    if not data:
        return None
    points = [p for values in data.values() for p in values]
    t0 = min(p.when for p in points).timestamp()
    t1 = max(p.when for p in points).timestamp()
    low = min(40.0, *(p.value for p in points))
    high = max(180.0, *(p.value for p in points))

    def x(when: datetime) -> float:
        span = (t1 - t0) or 1.0
        return PAD + (when.timestamp() - t0) / span * (WIDTH - 2 * PAD)

    def y(value: float) -> float:
        return HEIGHT - PAD - (value - low) / (high - low) * (HEIGHT - 2 * PAD)

    parts = [
        f'<svg class="vitals" role="img" aria-label="生命体征趋势" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
    ]
    for threshold in (140, 90):
        parts.append(
            f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(threshold):.1f}" y2="{y(threshold):.1f}" '
            f'stroke="#bbb" stroke-dasharray="4 4"/><text x="4" y="{y(threshold) + 4:.1f}" '
            f'font-size="10" fill="#888">{threshold}</text>'
        )
    colours = dict(SERIES)
    for legend, (name, values) in enumerate(data.items()):
        colour = colours[name]
        path = " ".join(f"{x(p.when):.1f},{y(p.value):.1f}" for p in values)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for p in values:
            label = escape(f"{name} {p.value:g} · {p.when:%Y-%m-%d}")
            parts.append(
                f'<circle cx="{x(p.when):.1f}" cy="{y(p.value):.1f}" r="3" fill="{colour}">'
                f"<title>{label}</title></circle>"
            )
        parts.append(
            f'<text x="{PAD + legend * 90}" y="14" font-size="12" fill="{colour}">● {escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
