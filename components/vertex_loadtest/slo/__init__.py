"""SLO expressions: parse ``p95 < 200ms`` (``grammar``) and judge it against a ``stats.json``
(``evaluation``). Pure Python; the gate, the early abort and the capacity sweep all use it.

Grammar (whitespace is free between tokens)::

    expression  := [scope ":"] metric operator bound
    scope       := '"' request-name '"'  |  "'" request-name "'"     e.g. "POST :predict"
    metric      := p50 | p90 | p95 | p99 | p99.9 | avg | mean | min | max     latency
                 | error_rate | failures | rps | requests
                 | ttft_P | tpot_P | itl_P | output_tps | goodput    generative runs
                 | capacity_rps | capacity_users                          a sweep's result
    operator    := "<" | "<=" | ">" | ">=" | "=="
    bound       := quantity
                 | "baseline" [ "*" number | "+" quantity | "-" quantity ]
    quantity    := number [unit]       number: 200, 1.5, .5, 1e3
    unit        := "ms" | "s"          latency metrics (the unit is required)
                 | "%"                 error_rate (a bare number is a fraction: 0.01 == 1%)

Latency metrics are over *successful* requests only (``latency_ms`` of the stats entry), in ms.
``error_rate`` is the entry's ``failure_rate`` (0..1), ``failures`` and ``requests`` are counts,
``rps`` the achieved requests per second. Without a scope an expression judges ``totals``.
Generative runs add ``ttft_p95``, ``tpot_p50``, ``itl_p99`` ... (times, with a unit), ``output_tps``
(tokens per second) and ``goodput`` (the share of good requests, or with ``/s`` their rate):
``vertex_loadtest.generation_slos``.
``capacity_rps`` and ``capacity_users`` are a capacity sweep's ``capacity.max_within_slo.rps`` and
``.users`` (the most load held within its SLOs); they take no scope and have no value without a sweep.

``baseline`` is the same metric, same scope, in another stats file (the last release's run), so
``p95 < baseline * 1.10`` allows a 10% regression and ``rps >= baseline * 0.9`` a 10% throughput loss.

Every parse error raises :class:`vertex_loadtest.errors.BadInput` naming the expression and the fix.
Numbers are parsed as decimals, so ``0.1s`` is exactly ``100`` ms and a value exactly at the threshold
compares as written (``p95 <= 200ms`` passes at 200 ms, ``p95 < 200ms`` does not).
"""

from vertex_loadtest.slo.evaluation import (
    Evaluation,
    evaluate,
    evaluate_all,
    format_value,
    margin,
    observe,
    request_entry,
)
from vertex_loadtest.slo.grammar import (
    CAPACITY_METRICS,
    COUNT_METRICS,
    EXAMPLES,
    LATENCY_METRICS,
    METRICS,
    PERCENT_METRICS,
    Threshold,
    parse,
    parse_all,
)

__all__ = [
    "CAPACITY_METRICS",
    "COUNT_METRICS",
    "EXAMPLES",
    "LATENCY_METRICS",
    "METRICS",
    "PERCENT_METRICS",
    "Evaluation",
    "Threshold",
    "evaluate",
    "evaluate_all",
    "format_value",
    "margin",
    "observe",
    "parse",
    "parse_all",
    "request_entry",
]
