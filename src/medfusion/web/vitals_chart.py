"""Vital-sign trends as inline SVG drawn on the server — no charting library to download.

One panel per unit, so heart rate is never read on the mmHg scale: 血压 (mmHg: systolic and diastolic),
心率 and 呼吸频率 (次/分), 体温 (℃), 血氧饱和度 (%). Every panel shares one time axis (ticks on whole
hours/days/months/years in the display zone), has a value axis with its unit, a legend, its reference lines
with their source, and an accessible ``<title>``/``<desc>`` that states what the chart shows in words.
Observations are matched by LOINC code, else by name; values without a time, non-finite values and values in
another unit are not drawn, and the panel says how many were left out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from medfusion.record.clinical_time import aware, display_zone
from medfusion.record.models import Observation
from medfusion.web.chart_axes import LinearScale, TimeScale, fmt_value, time_ticks

__all__ = ["PANELS", "Panel", "PanelView", "Series", "vitals_panels", "vitals_svg"]

WIDTH, HEIGHT = 360, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 36, 40
AXIS = "#525e6c"
GRID = "#e3e8ee"
REFERENCE = "#8e9aa8"


@dataclass(frozen=True)
class Series:
    name: str  # the observation name as recorded (e.g. 收缩压)
    loinc: str
    colour: str
    dash: str | None = None  # a second line in one panel is dashed: not told apart by colour alone


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    unit: str
    series: tuple[Series, ...]
    lines: tuple[float, ...]  # reference lines drawn dashed
    source: str  # what the lines mean and where they come from
    units: frozenset[str] = field(default_factory=frozenset)  # spellings of ``unit`` we accept


PANELS: tuple[Panel, ...] = (
    Panel(
        "bp",
        "血压",
        "mmHg",
        (Series("收缩压", "8480-6", "#b03a2e"), Series("舒张压", "8462-4", "#1f5fa6", "6 4")),
        (140.0, 90.0),
        "虚线 140/90 mmHg：高血压诊断界值（《中国高血压防治指南（2018年修订版）》）",
        frozenset({"mmHg", "mm[Hg]", "mmhg"}),
    ),
    Panel(
        "hr",
        "心率",
        "次/分",
        (Series("心率", "8867-4", "#0b6e99"),),
        (60.0, 100.0),
        "虚线 60–100 次/分：成人静息心率正常范围（《诊断学》第9版，人民卫生出版社）",
        frozenset({"次/分", "/min", "bpm", "次/min"}),
    ),
    Panel(
        "rr",
        "呼吸频率",
        "次/分",
        (Series("呼吸频率", "9279-1", "#5b3f8c"),),
        (12.0, 20.0),
        "虚线 12–20 次/分：成人静息呼吸频率正常范围（《诊断学》第9版，人民卫生出版社）",
        frozenset({"次/分", "/min", "次/min"}),
    ),
    Panel(
        "temp",
        "体温",
        "℃",
        (Series("体温", "8310-5", "#b03a2e"),),
        (37.3,),
        "虚线 37.3 ℃：发热（低热）起点（《诊断学》第9版，人民卫生出版社）",
        frozenset({"℃", "°C", "Cel", "摄氏度"}),
    ),
    Panel(
        "spo2",
        "血氧饱和度",
        "%",
        (Series("血氧饱和度", "59408-5", "#1b6b35"),),
        (96.0,),
        "虚线 96 %：NEWS2 评分 0 分的下限"
        "（Royal College of Physicians, National Early Warning Score 2, 2017）",
        frozenset({"%"}),
    ),
)


@dataclass(frozen=True)
class Point:
    when: datetime
    value: float


@dataclass(frozen=True)
class PanelView:
    """A drawn panel: what the chart page puts in one ``<figure>``."""

    key: str
    title: str
    unit: str
    svg: str
    points: int
    left_out: int  # matching observations not drawn (no time, no finite value, another unit)
    source: str


def _matches(series: Series, o: Observation) -> bool:
    return o.loinc_code == series.loinc if o.loinc_code else o.name == series.name


def _collect(panel: Panel, observations: Sequence[Observation]) -> tuple[dict[Series, list[Point]], int]:
    found: dict[Series, list[Point]] = {s: [] for s in panel.series}
    left_out = 0
    for o in observations:
        series = next((s for s in panel.series if _matches(s, o)), None)
        if series is None:
            continue
        unit_ok = o.unit is None or o.unit in panel.units or o.unit == panel.unit
        if o.effective_at is None or o.value is None or not math.isfinite(o.value) or not unit_ok:
            left_out += 1
            continue
        found[series].append(Point(aware(o.effective_at), float(o.value)))
    return {s: sorted(p, key=lambda p: p.when) for s, p in found.items() if p}, left_out


def _stamp(when: datetime) -> str:
    shown = when.astimezone(display_zone())
    return f"{shown:%Y-%m-%d %H:%M} {shown.tzname() or ''}".strip()


def _describe(panel: Panel, data: dict[Series, list[Point]]) -> str:
    parts = []
    for series, points in data.items():
        values = [p.value for p in points]
        last = points[-1]
        spread = f"{fmt_value(min(values))}–{fmt_value(max(values))}"
        parts.append(
            f"{series.name} {len(points)} 次，范围 {spread} {panel.unit}，"
            f"最近 {fmt_value(last.value)} {panel.unit}（{_stamp(last.when)}）"
        )
    return "；".join(parts) + "。" + panel.source


def _panel_svg(panel: Panel, data: dict[Series, list[Point]], times: TimeScale) -> str:
    values = [p.value for points in data.values() for p in points]
    y = LinearScale.covering([*values, *panel.lines], HEIGHT - BOTTOM, TOP, count=5)
    title_id, desc_id = f"vitals-{panel.key}-title", f"vitals-{panel.key}-desc"
    out = [
        f'<svg class="chart vitals" role="img" aria-labelledby="{title_id} {desc_id}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" font-size="12">',
        f'<title id="{title_id}">{escape(panel.title)}趋势（{escape(panel.unit)}）</title>',
        f'<desc id="{desc_id}">{escape(_describe(panel, data))}</desc>',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{LEFT - 6}" y="{TOP - 12}" text-anchor="end" fill="{AXIS}">{escape(panel.unit)}</text>',
    ]
    for tick in y.ticks(5):
        ty = y(tick)
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="{GRID}"/>'
            f'<text x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end" fill="{AXIS}">{fmt_value(tick)}</text>'
        )
    base = HEIGHT - BOTTOM
    for when, label in time_ticks(times, max_ticks=4):
        tx = times(when)
        out.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{TOP}" y2="{base + 4}" stroke="{GRID}"/>'
            f'<text x="{tx:.1f}" y="{base + 18}" text-anchor="middle" fill="{AXIS}">{escape(label)}</text>'
        )
    out.append(
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{base}" stroke="{AXIS}"/>'
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}" stroke="{AXIS}"/>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end" fill="{AXIS}" font-size="11">'
        f"时间（{escape(display_zone().key)}）</text>"
    )
    for line in panel.lines:
        ly = y(line)
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ly:.1f}" y2="{ly:.1f}" stroke="{REFERENCE}" '
            f'stroke-dasharray="4 4"/><text x="{WIDTH - RIGHT - 2}" y="{ly - 3:.1f}" text-anchor="end" '
            f'fill="{AXIS}" font-size="10">{fmt_value(line)}</text>'
        )
    legend_x = float(LEFT)
    for series, points in data.items():
        dash = f' stroke-dasharray="{series.dash}"' if series.dash else ""
        path = " ".join(f"{times(p.when):.1f},{y(p.value):.1f}" for p in points)
        out.append(f'<polyline fill="none" stroke="{series.colour}" stroke-width="2"{dash} points="{path}"/>')
        for p in points:
            label = escape(f"{series.name} {fmt_value(p.value)} {panel.unit} · {_stamp(p.when)}")
            out.append(
                f'<circle cx="{times(p.when):.1f}" cy="{y(p.value):.1f}" r="3.5" fill="{series.colour}">'
                f"<title>{label}</title></circle>"
            )
        out.append(
            f'<line x1="{legend_x:.0f}" x2="{legend_x + 22:.0f}" y1="14" y2="14" stroke="{series.colour}" '
            f'stroke-width="3"{dash}/><text x="{legend_x + 28:.0f}" y="18" fill="#1f2d3d">'
            f"{escape(series.name)}</text>"
        )
        legend_x += 36 + 13 * len(series.name)
    out.append("</svg>")
    return "".join(out)


def vitals_panels(observations: Sequence[Observation]) -> list[PanelView]:
    """The panels that have something to draw, on one shared time axis."""
    collected = [(panel, *_collect(panel, observations)) for panel in PANELS]
    instants = [p.when for _, data, _ in collected for points in data.values() for p in points]
    if not instants:
        return []
    times = TimeScale.covering(instants, LEFT, WIDTH - RIGHT)
    return [
        PanelView(
            key=panel.key,
            title=panel.title,
            unit=panel.unit,
            svg=_panel_svg(panel, data, times),
            points=sum(len(points) for points in data.values()),
            left_out=left_out,
            source=panel.source,
        )
        for panel, data, left_out in collected
        if data
    ]


def vitals_svg(observations: Sequence[Observation]) -> str | None:
    """All panels as one HTML fragment (figures with captions), or ``None`` when nothing can be drawn."""
    panels = vitals_panels(observations)
    if not panels:
        return None
    figures = []
    for panel in panels:
        note = f'<span class="muted">（另有 {panel.left_out} 条未绘制：无时间、无数值或单位不符）</span>'
        figures.append(
            f'<figure id="vitals-{panel.key}"><figcaption>{escape(panel.title)} '
            f'<span class="muted">{escape(panel.unit)}</span>{note if panel.left_out else ""}</figcaption>'
            f"{panel.svg}</figure>"
        )
    return '<div class="chart-panels">' + "".join(figures) + "</div>"
