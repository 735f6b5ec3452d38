"""The capacity sweep's picture: latency percentiles against achieved throughput (the hockey stick),
the SLO lines, the point of most load within the SLOs, and the stages table under it, put at the top of
the shown stage's Locust report. Inline SVG and HTML only (``vertex_loadtest.svg_chart``): the Vertex
AI UI's sandboxed frame fetches nothing. Pure Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from vertex_loadtest import slo, svg_chart

_STYLE = "font:14px sans-serif;max-width:1100px;margin:24px auto;padding:0 24px;color:#222;background:#fff"
_CELL = "border:1px solid #ccc;padding:4px 8px;text-align:right"
_VERDICT_COLORS = {"within": "#188038", "breached": "#c5221f", "inconclusive": "#9aa0a6"}
_PERCENTILES = ("p50", "p95", "p99")
#: The y axis stops at this multiple of the largest latency SLO (queues beyond capacity grow without end).
_Y_HEADROOM = 3.0


def write(report: Path, capacity: Mapping[str, Any], stage_report: Path) -> None:
    """Writes ``report``: the capacity section, then the shown stage's Locust report (if it wrote one)."""
    section = render(capacity)
    if stage_report.exists():
        html = stage_report.read_text(encoding="utf-8")
        html = html.replace("<body>", f"<body>{section}", 1) if "<body>" in html else section + html
    else:
        html = f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{section}</body></html>"
    report.write_text(html, encoding="utf-8")


def render(capacity: Mapping[str, Any]) -> str:
    """Returns the capacity section: summary, chart, stages table."""
    stages = capacity["stages"]
    best = capacity.get("max_within_slo")
    timed = [stage for stage in stages if stage["latency_ms"]["p50"] is not None]
    bounds = _latency_bounds(capacity.get("slos") or [])
    series = [
        svg_chart.Series(
            label=key,
            points=[(stage["achieved_rps"], stage["latency_ms"][key]) for stage in timed],
            point_colors=[_VERDICT_COLORS.get(stage["verdict"], "#666") for stage in timed],
        )
        for key in _PERCENTILES
    ]
    marks = []
    if best is not None:
        shown = stages[best["stage"]]
        if shown["latency_ms"]["p95"] is not None:
            marks.append(
                (shown["achieved_rps"], shown["latency_ms"]["p95"], f"{best['rps']:.3g} rps within the SLOs")
            )
    chart = svg_chart.Chart(
        title="Latency of successful requests against achieved throughput, one point per stage",
        x_label="achieved throughput (requests per second)",
        y_label="latency (ms)",
        series=series,
        hlines=[(bound, text) for text, bound in bounds],
        marks=marks,
        y_max=_Y_HEADROOM * max(bound for _, bound in bounds) if bounds else None,
    )
    return (
        f"<section id='vertex-loadtest-capacity' style='{_STYLE}'>"
        "<h2>Capacity sweep (vertex-loadtest)</h2>"
        f"<p><strong>{escape(str(capacity.get('summary', '')))}</strong></p>"
        f"<p>SLOs: {', '.join(f'<code>{escape(text)}</code>' for text in capacity.get('slos') or [])}. "
        f"Each stage ran {capacity.get('warmup_s')} s of warm-up (not counted) and "
        f"{capacity.get('stage_time_s')} s measured; dots: green within the SLOs, red breached, grey "
        f"inconclusive. The Locust report below is the stage "
        f"{'of most load within the SLOs' if best else 'that ran last'}.</p>"
        f"{svg_chart.render(chart)}{_table(stages, best)}</section>"
    )


def _latency_bounds(slos: list[str]) -> list[tuple[str, float]]:
    """Unscoped absolute latency upper bounds, as (expression, ms): the lines to draw."""
    bounds = []
    for text in slos:
        threshold = slo.parse(text)
        absolute = threshold.scope is None and threshold.value is not None
        if threshold.is_latency and absolute and threshold.operator in ("<", "<="):
            bounds.append((text, float(threshold.value or 0)))
    return bounds


def _table(stages: list[dict[str, Any]], best: Mapping[str, Any] | None) -> str:
    titles = (
        "#",
        "target",
        "achieved rps",
        "users",
        "p50 (ms)",
        "p95 (ms)",
        "p99 (ms)",
        "error rate",
        "generator CPU",
        "verdict",
    )
    header = "".join(f"<th style='{_CELL}'>{title}</th>" for title in titles)
    rows = []
    for index, stage in enumerate(stages):
        latency = stage["latency_ms"]
        verdict = stage["verdict"] + (f": {'; '.join(stage['breached'])}" if stage["breached"] else "")
        cells = [
            str(index),
            f"{stage['target']:g} {stage['kind']}",
            f"{stage['achieved_rps']:g}",
            str(stage["users"]),
            *(_ms(latency[key]) for key in _PERCENTILES),
            f"{100 * stage['error_rate']:.2f}%",
            f"{stage['generator_cpu_peak_percent']:g}%",
            escape(verdict),
        ]
        weight = "font-weight:bold;" if best is not None and best["stage"] == index else ""
        color = _VERDICT_COLORS.get(stage["verdict"], "#222")
        rows.append(
            f"<tr style='{weight}'>"
            + "".join(f"<td style='{_CELL}'>{cell}</td>" for cell in cells[:-1])
            + f"<td style='{_CELL};text-align:left;color:{color}'>{cells[-1]}</td></tr>"
        )
    return (
        f"<table style='border-collapse:collapse;margin:8px 0 24px'><tr>{header}</tr>{''.join(rows)}</table>"
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
