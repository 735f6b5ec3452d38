"""The SLO metrics of generative runs, read from the ``generation`` object of a stats entry
(``vertex_loadtest.stats``; definitions in ``docs/llm-metrics.md``). Pure Python.

- ``ttft_P``, ``tpot_P``, ``itl_P`` for P in p50, p90, p95, p99, p99.9, avg, min, max: times in
  ms or s, like latency metrics (``ttft_p95 < 500ms``, ``tpot_p50 <= 40ms``);
- ``output_tps``: output tokens per second over the run (``output_tps >= 1000``);
- ``goodput``: the share of all requests, failures included, that were good (met every per-request
  SLO of ``--goodput``), as a fraction or a percentage like ``error_rate`` (``goodput >= 0.9``,
  ``goodput >= 95%``); with ``/s``, good requests per second, vLLM's request goodput
  (``goodput >= 20/s``, judged as ``goodput_per_s``).

A stats entry without ``generation`` (no output token at all) has no value for any of them, so such
an SLO never passes.
"""

import math
from collections.abc import Mapping
from typing import Any

from vertex_loadtest.stats import STATISTIC_KEYS

_TIMES = {"ttft": "ttft_ms", "tpot": "tpot_ms", "itl": "itl_ms"}
#: Time metric -> (field of ``generation``, key in it).
TIME_METRICS = {
    f"{time}_{statistic}": (field, key)
    for time, field in _TIMES.items()
    for statistic, key in STATISTIC_KEYS.items()
}
#: ``goodput`` written with ``/s`` is judged as this.
GOODPUT_PER_S = "goodput_per_s"
#: Per-second metrics (a plain number, or with ``/s``).
RATE_METRICS = ("output_tps", GOODPUT_PER_S)
#: A share of requests (a fraction, or with ``%``), like ``error_rate``.
GOODPUT = "goodput"
METRICS = (*TIME_METRICS, *RATE_METRICS, GOODPUT)
#: What the plain-number metrics count, for error messages.
MEANINGS = {"output_tps": "output tokens per second", GOODPUT_PER_S: "good requests per second"}


def rate_hint(metric: str, number: str) -> str:
    """The end of the error for a fraction above 1: ``goodput`` may have meant a rate."""
    return f", or '{number}/s' for good requests per second" if metric == GOODPUT else ""


def canonical(metric: str, unit: str) -> str:
    """Returns the metric a bound's unit selects: ``goodput`` with ``/s`` is ``goodput_per_s``;
    ``ttft_mean`` is ``ttft_avg``."""
    if metric == GOODPUT and unit == "/s":
        return GOODPUT_PER_S
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
        value = goodput.get("fraction" if metric == GOODPUT else "per_s")
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
