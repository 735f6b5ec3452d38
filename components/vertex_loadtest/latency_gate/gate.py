"""The latency gate's runtime: judge a load test's ``stats.json`` against SLO expressions.

``run_gate`` is the one function the ``LatencyGateOp`` component and ``vertex-loadtest gate`` call.
``judge`` is its pure core (stats dicts in, :class:`Verdict` out).

A run never passes vacuously:

* zero requests, or zero successful requests, fails whatever the flags;
* ``run.complete == false`` fails unless ``allow_incomplete``;
* the run is *inconclusive* (a failure unless ``allow_inconclusive``) when the load generator was
  saturated or its event loop lagged past ``LOOP_LAG_P99_LIMIT_MS`` at p99 (it measured its own
  queueing), when an open-model target rate was not reached
  (``load.rps_shortfall``: coordinated omission hides latency), or when it made fewer than
  ``min_requests`` requests;
* an expression with no observed value (a latency with no successful request) never passes.

Imports nothing heavy (no kfp, locust, gevent): the gate image and the CLI stay small.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vertex_loadtest.errors import BadInput
from vertex_loadtest.latency_gate.thresholds import (
    LATENCY_METRICS,
    Evaluation,
    evaluate_all,
    format_value,
    parse_all,
    request_entry,
)
from vertex_loadtest.stats import ERROR_KINDS, LOOP_LAG_P99_LIMIT_MS, load_stats

logger = logging.getLogger(__name__)

#: Fewer requests than this make a run inconclusive by default (p99 needs 100 samples to be more
#: than the maximum). Keep equal to the default of ``LatencyGateOp(min_requests=...)``.
DEFAULT_MIN_REQUESTS = 100

PASSED, FAILED, INCONCLUSIVE = "passed", "failed", "inconclusive"
#: The Markdown verdict stays well under this (the Vertex AI UI renders small artifacts inline).
MAX_MARKDOWN_BYTES = 40_000
_MAX_ROWS = 100
_MAX_SHOWN = 160

#: Samples needed before a percentile is more than the largest sample (nearest rank).
_SAMPLES_NEEDED = {"p90": 10, "p95": 20, "p99": 100, "p99.9": 1000}


class GateFailed(RuntimeError):
    """The gate did not pass and ``fail_on_breach`` is set: fails the KFP task (and the pipeline)."""

    def __init__(self, verdict: Verdict):
        super().__init__(verdict.summary())
        self.verdict = verdict


@dataclass
class Verdict:
    """The gate's decision on one run.

    Attributes:
        status: ``passed``, ``failed`` or ``inconclusive``.
        evaluations: One per SLO expression, in order (observed, threshold, margin, pass/fail).
        failures: Reasons the run fails whatever the expressions say (zero successes, incomplete).
        inconclusive: Reasons the numbers may not describe the endpoint (saturated generator, rate
            shortfall, too few requests); they fail the gate unless ``allow_inconclusive``.
        notes: Caveats that do not change the verdict.
        stats: The judged stats (used for the run summary).
        baseline: The baseline stats, if any.
        allow_incomplete, allow_inconclusive, min_requests: The rules applied.
    """

    status: str
    evaluations: list[Evaluation]
    failures: list[str] = field(default_factory=list)
    inconclusive: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stats: Mapping[str, Any] = field(default_factory=dict, repr=False)
    baseline: Mapping[str, Any] | None = field(default=None, repr=False)
    allow_incomplete: bool = False
    allow_inconclusive: bool = False
    min_requests: int = DEFAULT_MIN_REQUESTS

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    @property
    def breaches(self) -> list[Evaluation]:
        return [evaluation for evaluation in self.evaluations if not evaluation.passed]

    def summary(self) -> str:
        """One line: the status and the first reason."""
        total = len(self.evaluations)
        held = total - len(self.breaches)
        if self.status == PASSED:
            return f"latency gate passed: {held} of {total} SLOs hold"
        if self.failures:
            return f"latency gate failed: {self.failures[0]}"
        if self.status == INCONCLUSIVE:
            return f"latency gate inconclusive: {self.inconclusive[0]}"
        shown = "; ".join(_describe(evaluation) for evaluation in self.breaches[:5])
        more = f"; and {len(self.breaches) - 5} more" if len(self.breaches) > 5 else ""
        return f"latency gate failed: {len(self.breaches)} of {total} SLOs breached: {shown}{more}"

    def metrics(self) -> dict[str, float]:
        """KFP Metrics: the decision, the run's totals and each expression's numbers; all finite.

        Per expression ``i`` (1-based, as numbered in the Markdown table): ``slo{i}_{metric}_observed``,
        ``_threshold``, ``_margin`` (in ms for latency, a fraction for error_rate) and ``_passed``
        (1/0). A value that does not exist (a latency with no successful request) is left out.
        """
        totals = self.stats.get("totals") or {}
        values: dict[str, Any] = {
            "passed": 1 if self.passed else 0,
            "inconclusive": 1 if self.status == INCONCLUSIVE else 0,
            "slos": len(self.evaluations),
            "breaches": len(self.breaches),
            "requests": totals.get("requests"),
            "successes": totals.get("successes"),
            "failures": totals.get("failures"),
            "error_rate": totals.get("failure_rate"),
            "rps": totals.get("rps"),
        }
        for index, evaluation in enumerate(self.evaluations, start=1):
            slug = re.sub(r"[^a-z0-9]+", "_", evaluation.threshold.metric)
            prefix = f"slo{index}_{slug}"
            values[f"{prefix}_observed"] = evaluation.observed
            values[f"{prefix}_threshold"] = evaluation.bound
            values[f"{prefix}_margin"] = evaluation.margin
            values[f"{prefix}_passed"] = 1 if evaluation.passed else 0
        return {name: float(value) for name, value in values.items() if _finite(value)}

    def to_markdown(self) -> str:
        """The verdict for the Vertex AI UI: status, reasons, one table row per SLO, the run."""
        icon = {PASSED: "✅ PASSED", FAILED: "❌ FAILED", INCONCLUSIVE: "⚠️ INCONCLUSIVE"}[self.status]
        totals = self.stats.get("totals") or {}
        held = len(self.evaluations) - len(self.breaches)
        lines = [
            f"## Latency gate: {icon}",
            "",
            f"{held} of {len(self.evaluations)} SLOs hold on {_number(totals.get('requests'))} requests "
            f"({_number(totals.get('successes'))} successful).",
            "",
        ]
        if self.failures:
            lines += ["**Why it failed:**", "", *(f"- {_escape(reason)}" for reason in self.failures), ""]
        if self.inconclusive:
            if self.allow_inconclusive:
                title = "**Inconclusive, judged anyway (`allow_inconclusive`):**"
            elif self.status == INCONCLUSIVE:
                title = "**Why it is inconclusive:**"
            else:
                title = "**Also inconclusive:**"
            lines += [title, "", *(f"- {_escape(reason)}" for reason in self.inconclusive), ""]
        lines += ["| # | SLO | observed | threshold | margin | result |", "|---|---|---|---|---|---|"]
        for index, evaluation in enumerate(self.evaluations[:_MAX_ROWS], start=1):
            lines.append(_row(index, evaluation))
        if len(self.evaluations) > _MAX_ROWS:
            rest = self.evaluations[_MAX_ROWS:]
            breached = sum(not evaluation.passed for evaluation in rest)
            lines.append(f"| … | {len(rest)} more SLOs | | | | {breached} breached (see Metrics) |")
        lines += [
            "",
            "Latency SLOs judge **successful requests only**; failed requests' latency is kept apart so fast "
            "errors (429/503) cannot pull percentiles down. Percentiles are nearest rank at 0.2% resolution, "
            "the same numbers as the load test's HTML report.",
            "",
        ]
        if self.notes:
            lines += ["**Notes:**", "", *(f"- {_escape(note)}" for note in self.notes[:20]), ""]
        lines += _run_lines(self.stats, self.baseline)
        text = "\n".join(lines) + "\n"
        while len(text.encode("utf-8")) > MAX_MARKDOWN_BYTES:  # only with absurdly long expressions
            text = (
                text[: MAX_MARKDOWN_BYTES // 2] + "\n\n… (verdict truncated; the Metrics hold every value)\n"
            )
        return text


def judge(
    stats: Mapping[str, Any],
    slos: Sequence[str],
    baseline: Mapping[str, Any] | None = None,
    *,
    allow_incomplete: bool = False,
    allow_inconclusive: bool = False,
    min_requests: int = DEFAULT_MIN_REQUESTS,
) -> Verdict:
    """Judges stats against SLO expressions with the no-vacuous-pass rules (module docstring).

    Args:
        stats: A parsed ``stats.json``.
        slos: SLO expressions (``vertex_loadtest.latency_gate.thresholds`` grammar).
        baseline: A parsed baseline ``stats.json`` for relative expressions.
        allow_incomplete: Judge a run that stopped before its planned end instead of failing it.
        allow_inconclusive: Judge a run whose numbers may not describe the endpoint instead of
            failing it (the reasons stay in the verdict).
        min_requests: Fewer requests than this make the run inconclusive.

    Returns:
        The verdict.

    Raises:
        BadInput: a bad expression, an unknown request name, a baseline expression without a
            baseline, a bad ``min_requests``, or stats without the documented sections.
    """
    thresholds = parse_all(slos, baseline_given=baseline is not None)
    if isinstance(min_requests, bool) or not isinstance(min_requests, int) or min_requests < 0:
        raise BadInput(f"min_requests={min_requests!r} is not a count: give an integer >= 0 (default 100)")
    _check_shape(stats, "stats")
    if baseline is not None:
        _check_shape(baseline, "baseline stats")
    evaluations = evaluate_all(thresholds, stats, baseline)

    totals = stats["totals"]
    run, load, generator = stats["run"], stats["load"], stats["generator"]
    requests, successes = _count(totals, "requests"), _count(totals, "successes")
    failures: list[str] = []
    inconclusive: list[str] = []
    notes: list[str] = []

    if requests == 0:
        failures.append(
            "the load test made no requests, so nothing was measured: check the host, the locustfile's "
            "tasks, the users and the run time"
        )
    elif successes == 0:
        failures.append(
            f"none of the {requests} requests succeeded ({_error_kinds(totals)}): a run with zero successful "
            f"requests never passes"
        )
    if run.get("complete") is False:
        reason = f"the run did not complete (stop reason: {run.get('stop_reason') or 'unknown'})"
        if allow_incomplete:
            notes.append(f"{reason}; judged anyway because allow_incomplete is set")
        else:
            failures.append(
                f"{reason}, so its numbers may not cover the planned load: re-run it, or set "
                f"allow_incomplete to judge partial runs"
            )
    if generator.get("saturated"):
        cpu = generator.get("cpu_peak_percent")
        at = f" (CPU peak {_number(cpu)}%)" if _finite(cpu) else ""
        inconclusive.append(
            f"the load generator was saturated{at}: it measured its own queueing, not the endpoint; give the "
            f"load test more CPU or processes, or fewer users"
        )
    lag: Any = (generator.get("loop_lag_ms") or {}).get("p99")
    if _finite(lag) and lag > LOOP_LAG_P99_LIMIT_MS:
        inconclusive.append(
            f"the load generator's event loop woke {_number(lag)} ms late at p99 (limit "
            f"{_number(LOOP_LAG_P99_LIMIT_MS)} ms): responses waited for it, so it timed its own delay; "
            f"run fewer users per process, more processes, or a lighter locustfile"
        )
    if load.get("rps_shortfall"):
        inconclusive.append(
            f"the target rate was not reached ({_number(load.get('achieved_rps'))} of "
            f"{_number(load.get('target_rps'))} rps): when the generator falls behind an open-model "
            f"schedule, the requests it did not send hide the latency a real load would see (coordinated "
            f"omission); add users or processes"
        )
    if 0 < requests < min_requests:
        inconclusive.append(
            f"only {requests} requests, fewer than min_requests={min_requests}: too few samples to judge "
            f"percentiles; run longer or at a higher rate, or lower min_requests"
        )
    notes += _resolution_notes(evaluations, stats)

    if failures:
        status = FAILED
    elif inconclusive and not allow_inconclusive:
        status = INCONCLUSIVE
    elif any(not evaluation.passed for evaluation in evaluations):
        status = FAILED
    else:
        status = PASSED
    return Verdict(
        status=status,
        evaluations=evaluations,
        failures=failures,
        inconclusive=inconclusive,
        notes=notes,
        stats=stats,
        baseline=baseline,
        allow_incomplete=allow_incomplete,
        allow_inconclusive=allow_inconclusive,
        min_requests=min_requests,
    )


def run_gate(
    stats: str | Path,
    slos: Sequence[str],
    baseline: str | Path | None = None,
    *,
    allow_incomplete: bool = False,
    allow_inconclusive: bool = False,
    min_requests: int = DEFAULT_MIN_REQUESTS,
    verdict_path: str | Path | None = None,
    log_metric: Callable[[str, float], Any] | None = None,
    fail_on_breach: bool = False,
) -> Verdict:
    """Reads the stats (and baseline), judges them, writes the verdict, logs the metrics.

    Args:
        stats: A ``stats.json`` or the directory holding it (the load test's stats artifact).
        slos: SLO expressions, e.g. ``["p95 < 200ms", "error_rate < 1%"]``.
        baseline: The baseline's ``stats.json`` (or directory), for relative expressions.
        allow_incomplete: See :func:`judge`.
        allow_inconclusive: See :func:`judge`.
        min_requests: See :func:`judge`.
        verdict_path: Where to write the Markdown verdict (a KFP ``Markdown`` artifact's path).
        log_metric: Called with each metric name and finite value (a KFP ``Metrics.log_metric``).
        fail_on_breach: Raise :class:`GateFailed` after writing the outputs unless the gate passed.

    Returns:
        The verdict.

    Raises:
        BadInput: any input the user must fix (exit code 2 in the CLI).
        GateFailed: the gate did not pass and ``fail_on_breach`` is set.
    """
    parse_all(slos, baseline_given=baseline is not None)  # bad expressions first, before any file
    stats_data = load_stats(stats)
    baseline_data = load_stats(baseline) if baseline is not None else None
    verdict = judge(
        stats_data,
        slos,
        baseline_data,
        allow_incomplete=allow_incomplete,
        allow_inconclusive=allow_inconclusive,
        min_requests=min_requests,
    )
    for index, evaluation in enumerate(verdict.evaluations, start=1):
        logger.info("SLO %d %s", index, _describe(evaluation))
    (logger.info if verdict.passed else logger.warning)("%s", verdict.summary())
    if verdict_path is not None:
        path = Path(verdict_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(verdict.to_markdown(), encoding="utf-8")
    if log_metric is not None:
        for name, value in verdict.metrics().items():
            log_metric(name, value)
    if fail_on_breach and not verdict.passed:
        raise GateFailed(verdict)
    return verdict


def _check_shape(stats: Mapping[str, Any], which: str) -> None:
    for section in ("run", "load", "generator", "totals"):
        if not isinstance(stats.get(section), Mapping):
            raise BadInput(
                f"the {which} have no '{section}' object: pass a stats.json written by a load test"
            )
    if not isinstance(stats.get("requests"), Mapping):
        raise BadInput(f"the {which} have no 'requests' object: pass a stats.json written by a load test")


def _count(entry: Mapping[str, Any], key: str) -> int:
    value = entry.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return int(value)
    return 0


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: Any) -> str:
    if not _finite(value):
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _error_kinds(entry: Mapping[str, Any]) -> str:
    errors = entry.get("errors") or {}
    counted = [f"{errors[kind]} {kind}" for kind in ERROR_KINDS if _finite(errors.get(kind)) and errors[kind]]
    if counted:
        return "errors: " + ", ".join(counted)
    return "no errors" if errors else "no error breakdown"


def _resolution_notes(evaluations: Sequence[Evaluation], stats: Mapping[str, Any]) -> list[str]:
    notes = []
    seen = set()
    for evaluation in evaluations:
        threshold = evaluation.threshold
        needed = _SAMPLES_NEEDED.get(threshold.metric)
        if needed is None or (threshold.scope, threshold.metric) in seen:
            continue
        seen.add((threshold.scope, threshold.metric))
        successes = _count(request_entry(stats, threshold.scope), "successes")
        if 0 < successes < needed:
            where = f" of {threshold.scope}" if threshold.scope else ""
            notes.append(
                f"{threshold.metric}{where} comes from {successes} successful requests (fewer than "
                f"{needed}), so it is the slowest sample or close to it"
            )
    return notes


def _describe(evaluation: Evaluation) -> str:
    threshold = evaluation.threshold
    result = "holds" if evaluation.passed else "BREACHED"
    observed = format_value(threshold.metric, evaluation.observed)
    bound = format_value(threshold.metric, evaluation.bound)
    detail = f" ({evaluation.note})" if evaluation.note else ""
    text = _clip(threshold.text)
    return f"{text!r} {result}: observed {observed}, threshold {threshold.operator} {bound}{detail}"


def _row(index: int, evaluation: Evaluation) -> str:
    threshold = evaluation.threshold
    bound = f"{threshold.operator} {format_value(threshold.metric, evaluation.bound)}"
    if threshold.uses_baseline:
        bound += f" (baseline {format_value(threshold.metric, evaluation.baseline)})"
    if evaluation.margin is None:
        margin = "n/a"
    else:
        margin = format_value(threshold.metric, evaluation.margin)
        if evaluation.margin == 0:
            margin += " (at the threshold)"
        else:
            if evaluation.margin > 0:
                margin = "+" + margin
            if evaluation.bound:
                margin += f" ({evaluation.margin / abs(evaluation.bound) * 100:+.1f}%)"
    result = "✅ pass" if evaluation.passed else "❌ fail"
    if evaluation.note:
        result += f": {evaluation.note}"
    expression = _clip(threshold.text).replace("`", "'")
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


def _run_lines(stats: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> list[str]:
    totals, run, load = stats.get("totals") or {}, stats.get("run") or {}, stats.get("load") or {}
    generator, target = stats.get("generator") or {}, stats.get("target") or {}
    host = _clip(str(target.get("endpoint") or target.get("host") or "n/a"))
    rate = f"{_number(load.get('achieved_rps'))} rps"
    if load.get("target_rps") is not None:
        rate += f" (target {_number(load.get('target_rps'))})"
    failed_p95 = (totals.get("failure_latency_ms") or {}).get("p95")
    lines = [
        "**Run:**",
        "",
        f"- target: `{_escape(host)}`",
        f"- requests: {_number(totals.get('requests'))} ({_number(totals.get('successes'))} successful, "
        f"{_number(totals.get('failures'))} failed; {_error_kinds(totals)})",
        f"- duration: {_number(run.get('duration_s'))} s, complete: {run.get('complete')}, "
        f"stop reason: {_escape(str(run.get('stop_reason')))}",
        f"- load: {_number(load.get('users'))} users, {_number(load.get('processes'))} process(es), {rate}",
        f"- generator CPU peak: {_number(generator.get('cpu_peak_percent'))}%, "
        f"saturated: {generator.get('saturated')}",
    ]
    if _finite(failed_p95):
        lines.append(f"- failed requests' p95 (not judged): {format_value('p95', failed_p95)}")
    if baseline is not None:
        base_run = baseline.get("run") or {}
        lines.append(
            f"- baseline: run started {_escape(str(base_run.get('started_at')))}, "
            f"{_number((baseline.get('totals') or {}).get('requests'))} requests"
        )
    return lines


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


__all__ = [
    "DEFAULT_MIN_REQUESTS",
    "FAILED",
    "INCONCLUSIVE",
    "LATENCY_METRICS",
    "PASSED",
    "GateFailed",
    "Verdict",
    "judge",
    "run_gate",
]
