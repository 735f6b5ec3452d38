"""The latency gate's pure core: judge a load test's stats against SLO expressions.

``judge`` takes stats dicts and returns a :class:`Verdict`. A run never passes vacuously:

* zero requests, or zero successful requests, fails whatever the flags; so does a generative run
  (``target.api`` chat or stream-raw) without a single output token;
* ``run.complete == false`` fails unless ``allow_incomplete``;
* the run is *inconclusive* (a failure unless ``allow_inconclusive``) when the load generator was
  saturated or its event loop lagged past ``LOOP_LAG_P99_LIMIT_MS`` at p99 (it measured its own
  queueing), when an open-model target rate was not reached
  (``load.rps_shortfall``: coordinated omission hides latency), or when it made fewer than
  ``min_requests`` requests;
* an expression with no observed value (a latency with no successful request) never passes;
* after a capacity sweep, the run is inconclusive when the load generator, not an SLO, stopped the
  sweep (``capacity.limited_by == "generator"``): its ``capacity_rps`` is a lower bound only.

Rendering the verdict as Markdown is ``render``'s job; reading files and writing outputs ``gate``'s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from vertex_loadtest.errors import BadInput
from vertex_loadtest.slo import Evaluation, evaluate_all, format_value, parse_all, request_entry
from vertex_loadtest.stats import (
    AUTH_ADVICE,
    LIMITED_BY_GENERATOR,
    LOOP_LAG_P99_LIMIT_MS,
    ErrorKind,
    all_refused_auth,
)

#: Fewer requests than this make a run inconclusive by default (p99 needs 100 samples to be more
#: than the maximum). Keep equal to the default of ``LatencyGateOp(min_requests=...)``.
DEFAULT_MIN_REQUESTS = 100
#: Longest expression text shown in a summary or a table row.
MAX_SHOWN = 160

#: Samples needed before a percentile is more than the largest sample (nearest rank).
_SAMPLES_NEEDED = {"p90": 10, "p95": 20, "p99": 100, "p99.9": 1000}


class GateStatus(StrEnum):
    """The gate's decision on one run."""

    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


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
        sizing: After a capacity sweep, given an expected peak: the replica sizing advice.
    """

    status: GateStatus
    evaluations: list[Evaluation]
    failures: list[str] = field(default_factory=list)
    inconclusive: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stats: Mapping[str, Any] = field(default_factory=dict, repr=False)
    baseline: Mapping[str, Any] | None = field(default=None, repr=False)
    allow_incomplete: bool = False
    allow_inconclusive: bool = False
    min_requests: int = DEFAULT_MIN_REQUESTS
    sizing: str | None = None

    @property
    def passed(self) -> bool:
        return self.status is GateStatus.PASSED

    @property
    def breaches(self) -> list[Evaluation]:
        return [evaluation for evaluation in self.evaluations if not evaluation.passed]

    def summary(self) -> str:
        """One line: the status and the first reason."""
        total = len(self.evaluations)
        held = total - len(self.breaches)
        if self.status is GateStatus.PASSED:
            return f"latency gate passed: {held} of {total} SLOs hold"
        if self.failures:
            return f"latency gate failed: {self.failures[0]}"
        if self.status is GateStatus.INCONCLUSIVE:
            return f"latency gate inconclusive: {self.inconclusive[0]}"
        shown = "; ".join(describe(evaluation) for evaluation in self.breaches[:5])
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
            "inconclusive": 1 if self.status is GateStatus.INCONCLUSIVE else 0,
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
        return {name: float(value) for name, value in values.items() if is_finite(value)}


def judge(
    stats: Mapping[str, Any],
    slos: Sequence[str],
    baseline: Mapping[str, Any] | None = None,
    *,
    allow_incomplete: bool = False,
    allow_inconclusive: bool = False,
    min_requests: int = DEFAULT_MIN_REQUESTS,
    expected_peak_rps: float = 0.0,
    machine_type: str = "",
) -> Verdict:
    """Judges stats against SLO expressions with the no-vacuous-pass rules (module docstring).

    Args:
        stats: A parsed ``stats.json``.
        slos: SLO expressions (``vertex_loadtest.slo`` grammar).
        baseline: A parsed baseline ``stats.json`` for relative expressions.
        allow_incomplete: Judge a run that stopped before its planned end instead of failing it.
        allow_inconclusive: Judge a run whose numbers may not describe the endpoint instead of
            failing it (the reasons stay in the verdict).
        min_requests: Fewer requests than this make the run inconclusive.
        expected_peak_rps: With a capacity sweep's stats, the peak to size replicas for (0: none).
        machine_type: The machine type of the tested replica, named in the sizing advice.

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
        reason = (
            f"none of the {requests} requests succeeded ({error_kinds(totals)}): a run with zero successful "
            f"requests never passes"
        )
        failures.append(f"{reason}; {AUTH_ADVICE}" if all_refused_auth(totals) else reason)
    if requests and successes and _generative(stats) and not _output_tokens(totals):
        failures.append(
            "the generative run produced no output token: a release that generates nothing never passes"
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
        cpu, runnable = generator.get("cpu_peak_percent"), generator.get("runnable_peak_percent")
        at = f" (CPU peak {format_number(cpu)}%" if is_finite(cpu) else " ("
        at += (
            f", runnable {format_number(runnable)}% of the time)" if is_finite(runnable) and runnable else ")"
        )
        at = "" if at == " ()" else at
        inconclusive.append(
            f"the load generator was saturated{at}: it measured its own queueing, not the endpoint; give the "
            f"load test more CPU or processes, or fewer users"
        )
    lag: Any = (generator.get("loop_lag_ms") or {}).get("p99")
    if is_finite(lag) and lag > LOOP_LAG_P99_LIMIT_MS:
        inconclusive.append(
            f"the load generator's event loop woke {format_number(lag)} ms late at p99 (limit "
            f"{format_number(LOOP_LAG_P99_LIMIT_MS)} ms): responses waited for it, so it timed its own "
            f"delay; run fewer users per process, more processes, or a lighter locustfile"
        )
    if load.get("rps_shortfall"):
        inconclusive.append(
            f"the target rate was not reached ({format_number(load.get('achieved_rps'))} of "
            f"{format_number(load.get('target_rps'))} rps): when the generator falls behind an open-model "
            f"schedule, the requests it did not send hide the latency a real load would see (coordinated "
            f"omission); add users or processes"
        )
    if 0 < requests < min_requests:
        inconclusive.append(
            f"only {requests} requests, fewer than min_requests={min_requests}: too few samples to judge "
            f"percentiles; run longer or at a higher rate, or lower min_requests"
        )
    capacity = stats.get("capacity") or {}
    if capacity.get("limited_by") == LIMITED_BY_GENERATOR:
        inconclusive.append(
            f"the capacity sweep stopped because the load generator saturated, not because an SLO broke: "
            f"{capacity.get('summary', '')}"
        )
    if expected_peak_rps < 0 or not math.isfinite(expected_peak_rps):
        raise BadInput(f"expected_peak_rps={expected_peak_rps!r}: give a rate >= 0 (0: no sizing advice)")
    notes += _resolution_notes(evaluations, stats)

    if failures:
        status = GateStatus.FAILED
    elif inconclusive and not allow_inconclusive:
        status = GateStatus.INCONCLUSIVE
    elif any(not evaluation.passed for evaluation in evaluations):
        status = GateStatus.FAILED
    else:
        status = GateStatus.PASSED
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
        sizing=sizing_line(capacity, machine_type, expected_peak_rps),
    )


def sizing_line(capacity: Mapping[str, Any], machine_type: str, expected_peak_rps: float) -> str | None:
    """The replica sizing advice for an expected peak; None without a peak or a capacity found."""
    best = capacity.get("max_within_slo") or {}
    found = best.get("rps")
    if not expected_peak_rps or not isinstance(found, int | float) or not is_finite(found) or found <= 0:
        return None
    per_replica = float(found)
    replicas = math.ceil(expected_peak_rps / per_replica)
    at_least = "at least " if capacity.get("limited_by") is None else ""
    return (
        f"one replica of {machine_type or 'the tested machine type'} holds {at_least}{per_replica:.4g} rps "
        f"within the SLOs; for a peak of {expected_peak_rps:g} rps set min_replica_count ≥ "
        f"⌈{expected_peak_rps:g} / {per_replica:.4g}⌉ = {replicas}"
    )


def _check_shape(stats: Mapping[str, Any], which: str) -> None:
    for section in ("run", "load", "generator", "totals"):
        if not isinstance(stats.get(section), Mapping):
            raise BadInput(
                f"the {which} have no '{section}' object: pass a stats.json written by a load test"
            )
    if not isinstance(stats.get("requests"), Mapping):
        raise BadInput(f"the {which} have no 'requests' object: pass a stats.json written by a load test")


def _generative(stats: Mapping[str, Any]) -> bool:
    return (stats.get("target") or {}).get("api") in ("chat", "stream-raw")


def _output_tokens(entry: Mapping[str, Any]) -> int:
    return _count(((entry.get("generation") or {}).get("output_tokens")) or {}, "sum")


def _count(entry: Mapping[str, Any], key: str) -> int:
    value = entry.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return int(value)
    return 0


def is_finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def format_number(value: Any) -> str:
    if not is_finite(value):
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def error_kinds(entry: Mapping[str, Any]) -> str:
    errors = entry.get("errors") or {}
    counted = [f"{errors[kind]} {kind}" for kind in ErrorKind if is_finite(errors.get(kind)) and errors[kind]]
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


def describe(evaluation: Evaluation) -> str:
    threshold = evaluation.threshold
    result = "holds" if evaluation.passed else "BREACHED"
    observed = format_value(threshold.metric, evaluation.observed)
    bound = format_value(threshold.metric, evaluation.bound)
    detail = f" ({evaluation.note})" if evaluation.note else ""
    text = clip(threshold.text)
    return f"{text!r} {result}: observed {observed}, threshold {threshold.operator} {bound}{detail}"


def clip(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"
