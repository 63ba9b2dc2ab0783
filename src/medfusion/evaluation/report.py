"""Reports: Markdown and a self-contained HTML page (inline SVG bars, no scripts, no network) comparing
several runs side by side — per dimension, per dataset, per metric, per category — and, for two runs of the
same suite, the difference."""

from __future__ import annotations

import html as escape
from collections.abc import Sequence

from medfusion.evaluation.grading import grade, thresholds, worst
from medfusion.evaluation.results import RunResult

_LABEL = {"safety": "通用安全", "ethics": "医学伦理", "scenario": "场景表现"}
# the quality metrics, charted per dataset; then the operational ones, listed only
_CHARTED = (
    "accuracy",
    "accuracy_single",
    "accuracy_multi",
    "top3",
    "macro_f1",
    "refusal_rate",
    "over_refusal_rate",
    "rubric_score",
    "harmless_rate",
    "judge_agreement",
    "unsupported_claim_rate",
    "recall",
    "precision",
    "f1",
    "leak_rate",
    "ece",
)
_SHOWN = (*_CHARTED, "claims_checked", "errors", "latency_ms_p50", "tokens")


def _who(run: RunResult) -> str:
    model = ",".join(f"{k}={v}" for k, v in run.models.items()) or "no model"
    return f"{run.target} ({run.target_kind}; {model})"


def _versions(runs: Sequence[RunResult]) -> str:
    """The grading versions the runs were graded with — mixed versions are said, not hidden."""
    found = sorted({r.grading_version for r in runs}) or [str(thresholds()["version"])]
    if len(found) == 1:
        return found[0]
    return " + ".join(found) + " (runs graded with different thresholds: grades are not comparable)"


def grades_by_target(runs: Sequence[RunResult]) -> dict[str, dict[str, str]]:
    """target → dimension → the worst grade of its runs in that dimension, plus ``overall``."""
    table: dict[str, dict[str, list[str]]] = {}
    for run in runs:
        if run.grade:
            table.setdefault(run.target, {}).setdefault(run.dimension, []).append(run.grade)
    out: dict[str, dict[str, str]] = {}
    for target, dims in table.items():
        out[target] = {d: worst(g) or "—" for d, g in dims.items()}
        out[target]["overall"] = worst(list(out[target].values())) or "—"
    return out


def markdown(runs: Sequence[RunResult]) -> str:
    lines = [
        "# MedFusion 验证中心报告 Validation report",
        "",
        f"Grading thresholds version {_versions(runs)}; a target's overall grade is its lowest "
        "dimension grade.",
        "",
        "## Grades",
        "",
        "| target | 通用安全 | 医学伦理 | 场景表现 | overall |",
        "| --- | --- | --- | --- | --- |",
    ]
    for target, dims in grades_by_target(runs).items():
        lines.append(
            f"| {target} | {dims.get('safety', '—')} | {dims.get('ethics', '—')} | "
            f"{dims.get('scenario', '—')} | {dims['overall']} |"
        )
    inapplicable = [r for r in runs if all(d.skipped for d in r.datasets)]
    for run in runs:
        if run in inapplicable:
            continue
        lines += [
            "",
            f"## {run.suite} · {_who(run)}",
            "",
            f"seed {run.seed}, limit {run.limit}, code {run.code_version}, "
            f"{run.started_at:%Y-%m-%d %H:%M} UTC; judge {run.judge}; "
            f"grade {run.grade or '—'}; executor {run.executor}"
            + (f"; {run.cached_items} items from earlier runs (cache/resume)" if run.cached_items else ""),
            "",
        ]
        for d in run.datasets:
            m = d.manifest
            counts = f"{m.size} items; {d.evaluated} evaluated"
            head = f"- **{m.name}** v{m.version} ({counts}; licence: {m.licence[:80]})"
            lines.append(head)
            if d.skipped:
                lines.append(f"  - skipped: {d.skipped}")
            if m.malformed:
                lines.append(f"  - malformed rows: {m.malformed}")
            shown = {k: d.metrics[k] for k in _SHOWN if k in d.metrics}
            if shown:
                lines.append("  - " + "; ".join(f"{k} {v}" for k, v in shown.items()))
            if d.grades:
                lines.append("  - grades: " + ", ".join(f"{k} {v}" for k, v in d.grades.items()))
            for category, values in d.categories.items():
                lines.append(f"  - {category}: " + ", ".join(f"{k} {v:g}" for k, v in values.items()))
            for error, count in d.errors.items():
                lines.append(f"  - errors ({count}): {error}")
    if inapplicable:
        lines += ["", "## Not applicable (the target answers none of the suite's items)", ""]
        lines += [
            f"- {r.suite} × {r.target}: " + "; ".join(str(d.skipped) for d in r.datasets)
            for r in inapplicable
        ]
    if len(runs) == 2 and runs[0].suite == runs[1].suite:
        lines += ["", "## Difference (second − first)", ""]
        for a, b in zip(runs[0].datasets, runs[1].datasets, strict=False):
            deltas = {
                k: round(b.metrics[k] - a.metrics[k], 4) for k in _SHOWN if k in a.metrics and k in b.metrics
            }
            lines.append(f"- {a.manifest.name}: " + "; ".join(f"{k} {v:+}" for k, v in deltas.items()))
    return "\n".join(lines) + "\n"


_FILL = {"A": "#2b8a3e", "B": "#e0a800", "C": "#e8590c", "D": "#c92a2a"}
_LOWER = {"over_refusal_rate", "unsupported_claim_rate", "leak_rate", "ece"}  # lower is better


def _width(label: str) -> int:
    """Rendered width of a 12 px label: CJK characters are about twice as wide as Latin ones."""
    return sum(12 if ord(ch) > 0x2E80 else 7 for ch in label)


def _bars(values: Sequence[tuple[str, float, str | None]], width: int = 360) -> str:
    """Horizontal bars on an absolute 0–1 scale (every charted metric is a rate), coloured by the grade the
    value earned where the dimension grades it; the label column is as wide as the longest label."""
    top = max([1.0, *(v for _, v, _ in values)])
    left = min(max((_width(label) for label, _, _ in values), default=100) + 12, 520)
    rows = []
    for i, (label, value, letter) in enumerate(values):
        w = int(width * max(value, 0.0) / top)
        fill = _FILL.get(letter or "", "#2f6fb5")
        grade = f" {letter}" if letter else ""
        rows.append(
            f'<text x="0" y="{i * 22 + 14}" font-size="12">{escape.escape(label)}</text>'
            f'<rect x="{left}" y="{i * 22 + 3}" width="{width}" height="14" fill="#f1f3f5"></rect>'
            f'<rect x="{left}" y="{i * 22 + 3}" width="{w}" height="14" fill="{fill}"></rect>'
            f'<text x="{left + width + 6}" y="{i * 22 + 14}" font-size="12">{value:g}{grade}</text>'
        )
    return (
        f'<svg width="{left + width + 80}" height="{len(values) * 22 + 6}" role="img">{"".join(rows)}</svg>'
    )


def _title(metric: str) -> str:
    return escape.escape(metric) + ("（越低越好 lower is better）" if metric in _LOWER else "")


def html(runs: Sequence[RunResult]) -> str:
    grades = grades_by_target(runs)
    parts = [
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>MedFusion 验证中心报告</title>",
        "<style>body{font-family:sans-serif;margin:2rem;max-width:1100px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3rem .6rem}.A{background:#d8f3dc}.B{background:#fff3bf}"
        ".C{background:#ffe0c2}.D{background:#ffc9c9}pre{white-space:pre-wrap}</style></head><body>",
        "<h1>MedFusion 验证中心报告</h1>",
        f"<p>评分阈值版本 {escape.escape(_versions(runs))}；总评取各维度中最低的一级。"
        "条形按 0–1 绝对刻度绘制，颜色为该指标所得评级（A 绿、B 黄、C 橙、D 红；蓝色为不评级的指标）。</p>",
        "<h2>评级 Grades</h2><table><tr><th>target</th><th>通用安全</th><th>医学伦理</th><th>场景表现</th>"
        "<th>overall</th></tr>",
    ]
    for target, dims in grades.items():
        cells = "".join(
            f"<td class='{dims.get(d, '')}'>{dims.get(d, '—')}</td>"
            for d in ("safety", "ethics", "scenario", "overall")
        )
        parts.append(f"<tr><td>{escape.escape(target)}</td>{cells}</tr>")
    parts.append("</table>")
    parts.append("<h2>按维度 per dimension</h2>")
    for dimension, label in _LABEL.items():
        graded = [
            (f"{r.target} · {d.manifest.name} · {metric}", d.metrics[metric], letter)
            for r in runs
            if r.dimension == dimension
            for d in r.datasets
            for metric, letter in d.grades.items()
        ]
        if graded:
            parts.append(f"<h3>{label}</h3>{_bars(graded)}")
    names = sorted({d.manifest.name for r in runs for d in r.datasets if not d.skipped})
    for dataset in names:
        parts.append(f"<h2>{escape.escape(dataset)}</h2>")
        metric_names = [
            m
            for m in _CHARTED
            if any(m in d.metrics for r in runs for d in r.datasets if d.manifest.name == dataset)
        ]
        for metric in metric_names:
            values = [
                (_who(r), d.metrics[metric], d.grades.get(metric))
                for r in runs
                for d in r.datasets
                if d.manifest.name == dataset and metric in d.metrics
            ]
            parts.append(f"<h3>{_title(metric)}</h3>{_bars(values)}")
        headline = {
            name: [
                (f"{r.target} · {category}", value, grade(r.dimension, name, value))
                for r in runs
                for d in r.datasets
                if d.manifest.name == dataset
                for category, found in d.categories.items()
                if (value := found.get(name)) is not None
            ]
            for name in _CHARTED
        }
        for name, bars in headline.items():
            if bars:
                parts.append(f"<h3>按类别 per category: {_title(name)}</h3>{_bars(bars)}")
    parts.append(f"<h2>Details</h2><pre>{escape.escape(markdown(runs))}</pre></body></html>")
    return "".join(parts)
