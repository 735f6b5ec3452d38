"""The SLO metrics of generative runs, read from the ``generation`` object of a stats entry
(``vertex_loadtest.stats``; definitions in ``docs/llm-metrics.md``). Pure Python.

- ``ttft_P``, ``tpot_P``, ``itl_P`` for P in p50, p90, p95, p99, p99.9, avg, min, max: times in
  ms or s, like latency metrics (``ttft_p95 < 500ms``, ``tpot_p50 <= 40ms``);
- ``output_tps``: output tokens per second over the run (``output_tps >= 1000``);
- ``goodput``: good requests per second (``goodput >= 20``), or with ``%`` their share of all
  requests, failures included (``goodput >= 95%``, judged as ``goodput_ratio``).

A stats entry without ``generation`` (no output token at all) has no value for any of them, so such
an SLO never passes.
"""

import math
from collections.abc import Mapping
from typing import Any

_TIMES = {"ttft": "ttft_ms", "tpot": "tpot_ms", "itl": "itl_ms"}
_STATISTICS = {
    "p50": "p50",
    "p90": "p90",
    "p95": "p95",
    "p99": "p99",
    "p99.9": "p99.9",
    "avg": "mean",
    "mean": "mean",
    "min": "min",
    "max": "max",
}
#: Time metric -> (field of ``generation``, key in it).
TIME_METRICS = {
    f"{time}_{statistic}": (field, key)
    for time, field in _TIMES.items()
    for statistic, key in _STATISTICS.items()
}
#: Per-second metrics (plain numbers).
RATE_METRICS = ("output_tps", "goodput")
#: ``goodput`` written with ``%`` is judged as this (a fraction, like error_rate).
GOODPUT_RATIO = "goodput_ratio"
METRICS = (*TIME_METRICS, *RATE_METRICS, GOODPUT_RATIO)


def canonical(metric: str, unit: str) -> str:
    """Returns the metric a bound's unit selects: ``goodput`` with ``%`` is ``goodput_ratio``;
    ``ttft_mean`` is ``ttft_avg``."""
    if metric == "goodput" and unit == "%":
        return GOODPUT_RATIO
    return metric.replace("_mean", "_avg") if metric in TIME_METRICS else metric


def observe(entry: Mapping[str, Any], metric: str) -> float | None:
    """Returns a generation ``metric`` of a stats entry in its base unit, or None without a value."""
    generation = entry.get("generation") or {}
    if metric in TIME_METRICS:
        field, key = TIME_METRICS[metric]
        value = (generation.get(field) or {}).get(key)
    elif metric == "output_tps":
        value = generation.get("output_tokens_per_s") if generation else None
    else:
        goodput = generation.get("goodput") or {}
        value = goodput.get("fraction" if metric == GOODPUT_RATIO else "per_s")
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def missing_note(metric: str, entry: Mapping[str, Any]) -> str:
    """Why a generation metric has no value in an entry."""
    if not entry.get("generation"):
        return "no output tokens were generated (not a generative run, or every stream failed)"
    if metric.startswith("goodput"):
        return "the load test was run without goodput SLOs (--goodput 'ttft<500ms,tpot<50ms')"
    if metric.startswith("tpot"):
        return "no request generated more than one token"
    return f"the stats have no {metric} value"
