"""The latency gate's Markdown verdict, for the Vertex AI UI: status, reasons, one row per SLO, the run.

Pure Python; judging is ``verdict``'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vertex_loadtest.latency_gate.verdict import (
    GateStatus,
    Verdict,
    clip,
    error_kinds,
    format_number,
    is_finite,
)
from vertex_loadtest.slo import PERCENT_METRICS, Evaluation, format_value

#: The Markdown verdict stays well under this (the Vertex AI UI renders small artifacts inline).
MAX_MARKDOWN_BYTES = 40_000
_MAX_ROWS = 100
_TITLES = {
    GateStatus.PASSED: "✅ PASSED",
    GateStatus.FAILED: "❌ FAILED",
    GateStatus.INCONCLUSIVE: "⚠️ INCONCLUSIVE",
}


def markdown(verdict: Verdict) -> str:
    """The verdict for the Vertex AI UI: status, reasons, one table row per SLO, the run."""
    icon = _TITLES[verdict.status]
    totals = verdict.stats.get("totals") or {}
    held = len(verdict.evaluations) - len(verdict.breaches)
    lines = [
        f"## Latency gate: {icon}",
        "",
        f"{held} of {len(verdict.evaluations)} SLOs hold on {format_number(totals.get('requests'))} requests "
        f"({format_number(totals.get('successes'))} successful).",
        "",
    ]
    if verdict.failures:
        lines += ["**Why it failed:**", "", *(f"- {_escape(reason)}" for reason in verdict.failures), ""]
    if verdict.inconclusive:
        if verdict.allow_inconclusive:
            title = "**Inconclusive, judged anyway (`allow_inconclusive`):**"
        elif verdict.status is GateStatus.INCONCLUSIVE:
            title = "**Why it is inconclusive:**"
        else:
            title = "**Also inconclusive:**"
        lines += [title, "", *(f"- {_escape(reason)}" for reason in verdict.inconclusive), ""]
    lines += ["| # | SLO | observed | threshold | margin | result |", "|---|---|---|---|---|---|"]
    for index, evaluation in enumerate(verdict.evaluations[:_MAX_ROWS], start=1):
        lines.append(_row(index, evaluation))
    if len(verdict.evaluations) > _MAX_ROWS:
        rest = verdict.evaluations[_MAX_ROWS:]
        breached = sum(not evaluation.passed for evaluation in rest)
        lines.append(f"| … | {len(rest)} more SLOs | | | | {breached} breached (see Metrics) |")
    lines += [
        "",
        "Latency SLOs judge **successful requests only**; failed requests' latency is kept apart so fast "
        "errors (429/503) cannot pull percentiles down. Percentiles are nearest rank at 0.2% resolution, "
        "the same numbers as the load test's HTML report.",
        "",
    ]
    if verdict.notes:
        lines += ["**Notes:**", "", *(f"- {_escape(note)}" for note in verdict.notes[:20]), ""]
    lines += _run_lines(verdict.stats, verdict.baseline)
    text = "\n".join(lines) + "\n"
    while len(text.encode("utf-8")) > MAX_MARKDOWN_BYTES:  # only with absurdly long expressions
        text = text[: MAX_MARKDOWN_BYTES // 2] + "\n\n… (verdict truncated; the Metrics hold every value)\n"
    return text


def _row(index: int, evaluation: Evaluation) -> str:
    threshold = evaluation.threshold
    bound = f"{threshold.operator} {format_value(threshold.metric, evaluation.bound)}"
    if threshold.uses_baseline:
        bound += f" (baseline {format_value(threshold.metric, evaluation.baseline)})"
    margin = _margin(evaluation)
    result = "✅ pass" if evaluation.passed else "❌ fail"
    if evaluation.note:
        result += f": {evaluation.note}"
    expression = clip(threshold.text).replace("`", "'")
    observed = format_value(threshold.metric, evaluation.observed)
    cells = [
        str(index),
        f"`{_escape(expression)}`",
        _escape(observed),
        _escape(bound),
        margin,
        _escape(result),
    ]
    return "| " + " | ".join(cells) + " |"


def _margin(evaluation: Evaluation) -> str:
    """How far the observed value is from breaching: a percentage SLO's in percentage points
    (``1 pp to spare``), any other's in its unit and relative to the threshold (``+20 ms (+10.0%)``)."""
    metric, value = evaluation.threshold.metric, evaluation.margin
    if value is None:
        return "n/a"
    if metric in PERCENT_METRICS:
        points = f"{abs(value) * 100:.4g} pp"
        return (
            f"{points} (at the threshold)"
            if value == 0
            else f"{points} {'to spare' if value > 0 else 'over'}"
        )
    if value == 0:
        return f"{format_value(metric, value)} (at the threshold)"
    margin = ("+" if value > 0 else "") + format_value(metric, value)
    if evaluation.bound:
        margin += f" ({value / abs(evaluation.bound) * 100:+.1f}%)"
    return margin


def _run_lines(stats: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> list[str]:
    totals, run, load = stats.get("totals") or {}, stats.get("run") or {}, stats.get("load") or {}
    generator, target = stats.get("generator") or {}, stats.get("target") or {}
    host = clip(str(target.get("endpoint") or target.get("host") or "n/a"))
    rate = f"{format_number(load.get('achieved_rps'))} rps"
    if load.get("target_rps") is not None:
        rate += f" (target {format_number(load.get('target_rps'))})"
    failed_p95 = (totals.get("failure_latency_ms") or {}).get("p95")
    lines = [
        "**Run:**",
        "",
        f"- target: `{_escape(host)}`",
        f"- requests: {format_number(totals.get('requests'))} "
        f"({format_number(totals.get('successes'))} successful, "
        f"{format_number(totals.get('failures'))} failed; {error_kinds(totals)})",
        f"- duration: {format_number(run.get('duration_s'))} s, complete: {run.get('complete')}, "
        f"stop reason: {_escape(str(run.get('stop_reason')))}",
        f"- load: {format_number(load.get('users'))} users, "
        f"{format_number(load.get('processes'))} process(es), {rate}",
        f"- generator CPU peak: {format_number(generator.get('cpu_peak_percent'))}%, "
        f"saturated: {generator.get('saturated')}",
    ]
    if is_finite(failed_p95):
        lines.append(f"- failed requests' p95 (not judged): {format_value('p95', failed_p95)}")
    if baseline is not None:
        base_run = baseline.get("run") or {}
        lines.append(
            f"- baseline: run started {_escape(str(base_run.get('started_at')))}, "
            f"{format_number((baseline.get('totals') or {}).get('requests'))} requests"
        )
    return lines


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
