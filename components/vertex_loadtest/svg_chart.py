"""A small XY line chart as inline SVG: no script, no font, nothing fetched, so it renders inside the
Vertex AI UI's sandboxed HTML artifact frame. Pure Python.

Why our own and not a charting library: matplotlib (with numpy and Pillow, ~80 MB) would not fit the
load-test image budget of 200 MB of site-packages next to Locust, and the JavaScript libraries
(plotly, bokeh, altair) need a script the sandbox must either fetch or inline by the megabyte. A line
chart with axes, reference lines and a marked point is a hundred lines of SVG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

COLORS = ("#1a73e8", "#e8710a", "#9334e6", "#5f6368", "#12b5cb", "#b06000")


@dataclass(frozen=True)
class Series:
    """One line: ``points`` are (x, y), drawn in x order; ``point_colors`` optionally color each dot."""

    label: str
    points: Sequence[tuple[float, float]]
    point_colors: Sequence[str] = ()


@dataclass(frozen=True)
class Chart:
    """A line chart.

    Attributes:
        title: Shown above the chart (and read by screen readers).
        x_label, y_label: Axis titles.
        series: The lines.
        hlines: Horizontal reference lines: (y, label), e.g. an SLO bound.
        marks: Points to ring and label: (x, y, label), e.g. the most load within the SLOs.
        y_max: Clip the y axis here (points above are drawn at the top edge); None: the largest y.
    """

    title: str
    x_label: str
    y_label: str
    series: Sequence[Series]
    hlines: Sequence[tuple[float, str]] = ()
    marks: Sequence[tuple[float, float, str]] = ()
    y_max: float | None = None
    width: int = 760
    height: int = 360
    margin: tuple[int, int, int, int] = field(default=(24, 24, 48, 64))  # top, right, bottom, left


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``top``: 0, 50, 100, ... (1, 2 or 5 times a power of ten)."""
    if not math.isfinite(top) or top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [step * i for i in range(math.ceil(top / step - 1e-9) + 1)]


def render(chart: Chart) -> str:
    """Returns the chart as an ``<svg>`` element."""
    xs = [x for s in chart.series for x, _ in s.points] + [x for x, _, _ in chart.marks]
    ys = [y for s in chart.series for _, y in s.points] + [y for y, _ in chart.hlines]
    title = escape(chart.title)
    if not xs:
        return f"<p>{title}: no data</p>"
    x_ticks = nice_ticks(max(xs) * 1.05)  # room for the rightmost point and its label
    y_ticks = nice_ticks(chart.y_max if chart.y_max else max(ys, default=1.0))
    top, right, bottom, left = chart.margin
    plot_w, plot_h = chart.width - left - right, chart.height - top - bottom

    def px(x: float) -> float:
        return left + x / x_ticks[-1] * plot_w

    def py(y: float) -> float:
        return top + plot_h - min(y, y_ticks[-1]) / y_ticks[-1] * plot_h

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' role='img' aria-label='{title}' width='{chart.width}' "
        f"height='{chart.height}' viewBox='0 0 {chart.width} {chart.height}' "
        f"style='font-family:sans-serif;font-size:11px'>",
        f"<title>{title}</title>",
    ]
    for y in y_ticks:
        parts.append(
            f"<line x1='{left}' x2='{left + plot_w}' y1='{py(y):.1f}' y2='{py(y):.1f}' stroke='#e0e0e0'/>"
            f"<text x='{left - 6}' y='{py(y) + 4:.1f}' text-anchor='end'>{_fmt(y)}</text>"
        )
    for x in x_ticks:
        parts.append(
            f"<line x1='{px(x):.1f}' x2='{px(x):.1f}' y1='{top + plot_h}' y2='{top + plot_h + 4}' "
            "stroke='#666'/>"
            f"<text x='{px(x):.1f}' y='{top + plot_h + 16}' text-anchor='middle'>{_fmt(x)}</text>"
        )
    parts.append(
        f"<polyline fill='none' stroke='#666' points='{left},{top} {left},{top + plot_h} "
        f"{left + plot_w},{top + plot_h}'/>"
        f"<text x='{left + plot_w / 2:.1f}' y='{chart.height - 8}' text-anchor='middle'>"
        f"{escape(chart.x_label)}</text>"
        f"<text transform='translate(14 {top + plot_h / 2:.1f}) rotate(-90)' text-anchor='middle'>"
        f"{escape(chart.y_label)}</text>"
    )
    for y, label in chart.hlines:
        parts.append(
            f"<line x1='{left}' x2='{left + plot_w}' y1='{py(y):.1f}' y2='{py(y):.1f}' stroke='#c5221f' "
            f"stroke-dasharray='6 4'/><text x='{left + plot_w - 4}' y='{py(y) - 4:.1f}' text-anchor='end' "
            f"fill='#c5221f'>{escape(label)}</text>"
        )
    for index, series in enumerate(chart.series):
        color = COLORS[index % len(COLORS)]
        ordered = sorted(range(len(series.points)), key=lambda i: series.points[i][0])
        line = " ".join(f"{px(series.points[i][0]):.1f},{py(series.points[i][1]):.1f}" for i in ordered)
        parts.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' points='{line}'/>")
        for i in ordered:
            x, y = series.points[i]
            fill = series.point_colors[i] if i < len(series.point_colors) else color
            parts.append(
                f"<circle cx='{px(x):.1f}' cy='{py(y):.1f}' r='3.5' fill='{fill}' stroke='{color}'/>"
            )
        parts.append(
            f"<rect x='{left + 8}' y='{top + 6 + 16 * index}' width='10' height='10' fill='{color}'/>"
            f"<text x='{left + 22}' y='{top + 15 + 16 * index}'>{escape(series.label)}</text>"
        )
    for x, y, label in chart.marks:
        anchor = "end" if px(x) > left + 0.75 * plot_w else "middle"
        parts.append(
            f"<circle cx='{px(x):.1f}' cy='{py(y):.1f}' r='9' fill='none' stroke='#188038' "
            "stroke-width='2.5'/>"
            f"<text x='{px(x):.1f}' y='{py(y) - 14:.1f}' text-anchor='{anchor}' fill='#188038' "
            f"font-weight='bold'>{escape(label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
