"""The generation section of Locust's HTML report: TTFT, TPOT and output tokens per second, as
tables and as charts over time. Plain HTML and inline SVG (no script, nothing fetched), added after
Locust's own report, whose request counts stay untouched. Pure Python.
"""

from html import escape
from pathlib import Path
from typing import Any

from vertex_loadtest import histogram

_WIDTH, _HEIGHT, _PAD = 720, 180, 44
_STYLE = "font:14px sans-serif;max-width:1100px;margin:24px auto;padding:0 24px;color:#222;background:#fff"
_TABLE = "border-collapse:collapse;margin:8px 0 24px"
_CELL = "border:1px solid #ccc;padding:4px 8px;text-align:right"


def add_to_report(report: Path, stats: dict[str, Any], generation_dump: dict[str, Any] | None) -> None:
    """Adds the generation section to ``report`` when the run generated tokens (else leaves it)."""
    if not report.exists() or not stats["totals"].get("generation"):
        return
    html = report.read_text(encoding="utf-8")
    section = render(stats, generation_dump or {})
    report.write_text(html.replace("</body>", f"{section}</body>", 1), encoding="utf-8")


def render(stats: dict[str, Any], generation_dump: dict[str, Any]) -> str:
    """Returns the section: one table row per request name, then the charts over time."""
    rows = [("Aggregated", stats["totals"])]
    rows += [(name, entry) for name, entry in sorted(stats["requests"].items()) if entry.get("generation")]
    header = "".join(
        f"<th style='{_CELL}'>{title}</th>"
        for title in (
            "Name",
            "TTFT p50 (ms)",
            "TTFT p95",
            "TTFT p99",
            "TPOT p50 (ms)",
            "TPOT p95",
            "TPOT p99",
            "ITL p99 (ms)",
            "Output tokens",
            "Output tokens per second",
            "Goodput (req/s)",
        )
    )
    body = "".join(_row(name, entry["generation"]) for name, entry in rows)
    windows = _windows(generation_dump)
    charts = [
        _chart("Time to first token (ms)", windows, [("p50", "ttft", 0.5), ("p95", "ttft", 0.95)]),
        _chart("Time per output token (ms)", windows, [("p50", "tpot", 0.5), ("p95", "tpot", 0.95)]),
        _chart("Output tokens per second", windows, [("tokens/s", "tokens", None)]),
    ]
    return (
        f"<section id='vertex-loadtest-generation' style='{_STYLE}'>"
        "<h2>Generation (vertex-loadtest)</h2>"
        "<p>Per successful streamed request, as vLLM's <code>vllm bench serve</code> defines them: "
        "TTFT to the first content event, TPOT = (E2E &minus; TTFT) / (output tokens &minus; 1), ITL the "
        "gaps between content events. Percentiles are nearest rank at 0.2% resolution, as in stats.json.</p>"
        f"<table style='{_TABLE}'><tr>{header}</tr>{body}</table>{''.join(charts)}</section>"
    )


def _row(name: str, generation: dict[str, Any]) -> str:
    ttft, tpot, itl = generation["ttft_ms"], generation["tpot_ms"], generation["itl_ms"]
    goodput = generation.get("goodput")
    cells = [
        escape(name),
        *(_number(ttft[key]) for key in ("p50", "p95", "p99")),
        *(_number(tpot[key]) for key in ("p50", "p95", "p99")),
        _number(itl["p99"]),
        _number(generation["output_tokens"]["sum"]),
        _number(generation["output_tokens_per_s"]),
        _number(goodput["per_s"]) if goodput else "-",
    ]
    return "<tr>" + "".join(f"<td style='{_CELL}'>{cell}</td>" for cell in cells) + "</tr>"


def _windows(dump: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    window_s = max(1, int(dump.get("window_s") or 1))
    points = []
    for start, data in sorted((int(start), data) for start, data in (dump.get("series") or {}).items()):
        point = {"tokens": data["tokens"] / window_s}
        for name in ("ttft", "tpot"):
            counts = {float(bucket): count for bucket, count in data[name]}
            point[name] = counts
        points.append((start, point))
    return points


def _chart(
    title: str, windows: list[tuple[int, dict[str, Any]]], lines: list[tuple[str, str, float | None]]
) -> str:
    """An SVG line chart of ``lines`` (label, field, quantile or None for a plain value) over time."""
    series = []
    for label, name, quantile in lines:
        values = []
        for start, point in windows:
            if quantile is None:
                values.append((start, point[name]))
            elif point[name]:
                counts = point[name]
                values.append((start, histogram.percentile(counts, sum(counts.values()), quantile)))
        series.append((label, values))
    every = [value for _, values in series for value in values]
    if not every:
        return f"<h3>{escape(title)}</h3><p>no data</p>"
    first, last = min(t for t, _ in every), max(t for t, _ in every)
    top = max(v for _, v in every) or 1.0
    colors = ("#ff9f00", "#8a2be2", "#00a86b")

    def x(t: float) -> float:
        return _PAD + (t - first) / max(last - first, 1) * (_WIDTH - 2 * _PAD)

    def y(v: float) -> float:
        return _HEIGHT - _PAD / 2 - v / top * (_HEIGHT - _PAD)

    paths, legend = [], []
    for index, (label, values) in enumerate(series):
        color = colors[index % len(colors)]
        points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in values)
        paths.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' points='{points}'/>")
        legend.append(f"<span style='color:{color}'>&#9632; {escape(label)}</span>")
    axis = (
        f"<line x1='{_PAD}' y1='{y(0):.1f}' x2='{_WIDTH - _PAD}' y2='{y(0):.1f}' stroke='#999'/>"
        f"<text x='2' y='{y(top) + 4:.1f}' font-size='11'>{_number(top)}</text>"
        f"<text x='2' y='{y(0):.1f}' font-size='11'>0</text>"
        f"<text x='{_WIDTH - _PAD}' y='{_HEIGHT - 2}' font-size='11' text-anchor='end'>"
        f"{last - first:g} s</text>"
    )
    return (
        f"<h3>{escape(title)}</h3><div>{' '.join(legend)}</div>"
        f"<svg role='img' aria-label='{escape(title)}' width='{_WIDTH}' height='{_HEIGHT}' "
        f"viewBox='0 0 {_WIDTH} {_HEIGHT}'>{axis}{''.join(paths)}</svg>"
    )


def _number(value: Any) -> str:
    if value is None:
        return "-"
    return (
        f"{value:,}" if isinstance(value, int) else f"{value:,.4g}" if abs(value) >= 1000 else f"{value:.4g}"
    )
