"""Judging parsed SLO expressions against a ``stats.json``: observe, compare, margin, format."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from vertex_loadtest import generation_slos
from vertex_loadtest.errors import BadInput
from vertex_loadtest.slo.grammar import (
    CAPACITY_METRICS,
    COUNT_METRICS,
    LATENCY_METRICS,
    OPERATORS,
    Threshold,
    _bad,
    _is_time,
)


@dataclass(frozen=True)
class Evaluation:
    """The judgement of one expression on one stats file.

    Attributes:
        threshold: The parsed expression.
        observed: The measured value in the metric's base unit, or None when there is none (a
            latency with no successful request).
        bound: The threshold value compared against (None when it cannot be computed).
        baseline: The baseline's value of the metric, for relative expressions.
        margin: Distance to breaching in the base unit: positive is headroom, negative a breach,
            0 exactly at the bound (``bound - observed`` for ``<``/``<=``, ``observed - bound`` for
            ``>``/``>=``, ``-|observed - bound|`` for ``==``); None when not computable.
        passed: Whether the expression holds. Never True without an observed value.
        note: Why the expression could not pass, when that is not a plain breach.
    """

    threshold: Threshold
    observed: float | None
    bound: float | None
    baseline: float | None
    margin: float | None
    passed: bool
    note: str | None = None


def request_entry(stats: Mapping[str, Any], scope: str | None, *, which: str = "stats") -> Mapping[str, Any]:
    """Returns the stats entry an expression judges: ``totals`` or ``requests[scope]``.

    Raises:
        BadInput: ``scope`` is not a request name in the stats.
    """
    if scope is None:
        totals: Mapping[str, Any] = stats["totals"]
        return totals
    requests = stats.get("requests") or {}
    if scope not in requests:
        known = ", ".join(repr(name) for name in sorted(requests)) or "none (the run made no requests)"
        close = difflib.get_close_matches(scope, list(requests), n=1)
        suggestion = f" (did you mean {close[0]!r}?)" if close else ""
        raise BadInput(
            f"SLO request name {scope!r} is not in the {which}{suggestion}; request names there: {known}. "
            f"Quote a name exactly as the load test reports it (METHOD name)"
        )
    entry: Mapping[str, Any] = requests[scope]
    return entry


def observe(entry: Mapping[str, Any], metric: str) -> float | None:
    """Returns ``metric`` of a stats entry in its base unit, or None when there is no value."""
    if metric in generation_slos.METRICS:
        return generation_slos.observe(entry, metric)
    if metric in CAPACITY_METRICS:
        value = (entry.get("max_within_slo") or {}).get(CAPACITY_METRICS[metric])
    elif metric in LATENCY_METRICS:
        value = (entry.get("latency_ms") or {}).get(LATENCY_METRICS[metric])
    else:
        value = entry.get(COUNT_METRICS[metric])
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def margin(op: str, observed: float, bound: float) -> float:
    """Returns the headroom of ``observed`` against ``bound`` (negative: breach; 0: exactly at it)."""
    if op in ("<", "<="):
        return _difference(bound, observed)
    if op in (">", ">="):
        return _difference(observed, bound)
    return -abs(_difference(observed, bound)) or 0.0


def _difference(a: float, b: float) -> float:
    # Exact decimal difference, rounded once: 200.3 - 200.0 is 0.3, not 0.30000000000001137.
    return float(Decimal(repr(a)) - Decimal(repr(b)))


def evaluate(
    threshold: Threshold, stats: Mapping[str, Any], baseline: Mapping[str, Any] | None = None
) -> Evaluation:
    """Judges one expression against stats (and the baseline stats for relative expressions).

    Raises:
        BadInput: the scope is not a request name in the stats (or the baseline), or the expression
            is relative and no baseline is given.
    """
    entry = _judged(stats, threshold)
    observed = observe(entry, threshold.metric)
    baseline_value = None
    if threshold.uses_baseline:
        if baseline is None:
            raise _bad(
                threshold.text,
                "compares with 'baseline' but no baseline stats are given: pass the last release's stats as "
                "the baseline or use an absolute value",
            )
        baseline_value = observe(_judged(baseline, threshold, which="baseline stats"), threshold.metric)
    bound = threshold.bound(baseline_value)
    note = None
    if observed is None:
        note = (
            generation_slos.missing_note(threshold.metric, entry)
            if threshold.metric in generation_slos.METRICS
            else "no successful requests to measure latency on"
            if threshold.is_latency
            else "no stage of a capacity sweep held the SLOs (or the run was not a sweep)"
            if threshold.metric in CAPACITY_METRICS
            else f"the stats have no {threshold.metric} value"
        )
    elif threshold.uses_baseline and bound is None:
        note = (
            "the baseline has no successful requests to compare latency with"
            if threshold.is_latency
            else f"the baseline has no {threshold.metric} value"
        )
    if observed is None or bound is None:
        return Evaluation(threshold, observed, bound, baseline_value, None, False, note)
    passed = OPERATORS[threshold.operator](observed, bound)
    return Evaluation(
        threshold, observed, bound, baseline_value, margin(threshold.operator, observed, bound), passed
    )


def _judged(stats: Mapping[str, Any], threshold: Threshold, *, which: str = "stats") -> Mapping[str, Any]:
    if threshold.metric in CAPACITY_METRICS:
        capacity: Mapping[str, Any] = stats.get("capacity") or {}
        return capacity
    return request_entry(stats, threshold.scope, which=which)


def evaluate_all(
    thresholds: Iterable[Threshold], stats: Mapping[str, Any], baseline: Mapping[str, Any] | None = None
) -> list[Evaluation]:
    """Evaluates every threshold, in order."""
    return [evaluate(threshold, stats, baseline) for threshold in thresholds]


def format_value(metric: str, value: float | None) -> str:
    """Formats a value of ``metric`` for people: ``183.2 ms``, ``0.52%``, ``52.3/s``, ``1200``."""
    if value is None:
        return "n/a"
    if _is_time(metric):
        if abs(value) >= 10_000:
            return f"{value / 1000:.4g} s"
        return f"{_trim(value, 3)} ms"
    if metric in ("error_rate", generation_slos.GOODPUT):
        return f"{_trim(value * 100, 4)}%"
    if metric in ("rps", "capacity_rps", *generation_slos.RATE_METRICS):
        return f"{_trim(value, 2)}/s"
    return _trim(value, 3)


def _trim(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
