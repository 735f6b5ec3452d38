"""SLO expressions: parse ``p95 < 200ms`` and judge it against a ``stats.json``. Pure Python.

Grammar (whitespace is free between tokens)::

    expression  := [scope ":"] metric operator bound
    scope       := '"' request-name '"'  |  "'" request-name "'"     e.g. "POST :predict"
    metric      := p50 | p90 | p95 | p99 | p99.9 | avg | mean | min | max     latency
                 | error_rate | failures | rps | requests
    operator    := "<" | "<=" | ">" | ">=" | "=="
    bound       := quantity
                 | "baseline" [ "*" number | "+" quantity | "-" quantity ]
    quantity    := number [unit]       number: 200, 1.5, .5, 1e3
    unit        := "ms" | "s"          latency metrics (the unit is required)
                 | "%"                 error_rate (a bare number is a fraction: 0.01 == 1%)

Latency metrics are over *successful* requests only (``latency_ms`` of the stats entry), in ms.
``error_rate`` is the entry's ``failure_rate`` (0..1), ``failures`` and ``requests`` are counts,
``rps`` the achieved requests per second. Without a scope an expression judges ``totals``.

``baseline`` is the same metric, same scope, in another stats file (the last release's run), so
``p95 < baseline * 1.10`` allows a 10% regression and ``rps >= baseline * 0.9`` a 10% throughput loss.

Every parse error raises :class:`vertex_loadtest.errors.BadInput` naming the expression and the fix.
Numbers are parsed as decimals, so ``0.1s`` is exactly ``100`` ms and a value exactly at the threshold
compares as written (``p95 <= 200ms`` passes at 200 ms, ``p95 < 200ms`` does not).
"""

from __future__ import annotations

import difflib
import math
import operator as _operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from vertex_loadtest.errors import BadInput

#: Latency metric -> key in ``latency_ms`` of a stats entry.
LATENCY_METRICS = {
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
#: Other metrics -> key in a stats entry.
COUNT_METRICS = {"error_rate": "failure_rate", "failures": "failures", "rps": "rps", "requests": "requests"}
METRICS = (*LATENCY_METRICS, *COUNT_METRICS)
#: Metrics that are shares, written in percent: their margins read in percentage points.
PERCENT_METRICS = frozenset({"error_rate"})

LATENCY_UNITS = {"ms": Decimal(1), "s": Decimal(1000)}

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": _operator.lt,
    "<=": _operator.le,
    ">": _operator.gt,
    ">=": _operator.ge,
    "==": _operator.eq,
}

EXAMPLES = (
    "'p95 < 200ms', 'error_rate < 1%', 'rps >= 50', '\"POST :predict\": p99 <= 1.5s', 'p95 < baseline * 1.1'"
)

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_SCOPE_RE = re.compile(r"""\s*(?P<quote>["'])(?P<name>.*?)(?P=quote)\s*:(?P<rest>.*)\Z""", re.DOTALL)
# The longest operators first; "=", "!=", "=<" and "=>" are caught to explain the fix.
_COMPARISON_RE = re.compile(
    r"\s*(?P<metric>.*?)\s*(?P<op><=|>=|==|!=|=<|=>|<|>|=)\s*(?P<bound>.*?)\s*\Z", re.DOTALL
)
_QUANTITY_RE = re.compile(rf"(?P<number>{_NUMBER})\s*(?P<unit>[A-Za-z%µ]*)\Z")
_BASELINE_RE = re.compile(r"baseline(?:\s*(?P<op>[*+-])\s*(?P<operand>.*))?\Z", re.DOTALL)
_SHOWN = 120  # longest expression quoted back in an error message


@dataclass(frozen=True)
class Threshold:
    """One parsed SLO expression.

    Attributes:
        text: The expression as written.
        scope: Request name (a key of ``requests`` in stats.json), or None for ``totals``.
        metric: Canonical metric name (``avg`` for ``mean``), see :data:`METRICS`.
        operator: One of :data:`OPERATORS`.
        value: The bound in the metric's base unit (ms, fraction, count, per second); None when the
            bound is relative to the baseline.
        baseline_op: None, or how the baseline value becomes the bound: ``*``, ``+``, ``-`` or
            ``=`` (``baseline`` alone).
        baseline_operand: Factor (for ``*``) or offset in the base unit (``+``/``-``).
    """

    text: str
    scope: str | None
    metric: str
    operator: str
    value: float | None = None
    baseline_op: str | None = None
    baseline_operand: float | None = None

    @property
    def uses_baseline(self) -> bool:
        return self.baseline_op is not None

    @property
    def is_latency(self) -> bool:
        return self.metric in LATENCY_METRICS

    def bound(self, baseline_value: float | None = None) -> float | None:
        """Returns the threshold to compare against (None when the baseline has no value)."""
        if not self.uses_baseline:
            return self.value
        if baseline_value is None:
            return None
        operand = self.baseline_operand or 0.0
        if self.baseline_op == "*":
            return float(Decimal(repr(baseline_value)) * Decimal(repr(operand)))
        if self.baseline_op == "+":
            return float(Decimal(repr(baseline_value)) + Decimal(repr(operand)))
        if self.baseline_op == "-":
            return float(Decimal(repr(baseline_value)) - Decimal(repr(operand)))
        return baseline_value


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


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "...")


def _bad(text: str, problem: str) -> BadInput:
    return BadInput(f"SLO expression {_shown(text)}: {problem}")


def _decimal(text: str, number: str) -> Decimal:
    try:
        value = Decimal(number)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid numbers
        raise _bad(text, f"{number!r} is not a number") from None
    if not value.is_finite():  # pragma: no cover - idem
        raise _bad(text, f"{number!r} is not a finite number")
    return value


def _quantity(text: str, metric: str, raw: str, *, what: str = "the bound") -> Decimal:
    """Parses ``number[unit]`` for ``metric`` into the metric's base unit."""
    raw = raw.strip()
    if raw.startswith("-"):
        raise _bad(text, f"{what} {raw!r} is negative; no metric here is below 0: use a value >= 0")
    match = _QUANTITY_RE.match(raw)
    if not match:
        hint = "a number with its unit, e.g. '200ms'" if metric in LATENCY_METRICS else "a number, e.g. '50'"
        if metric == "error_rate":
            hint = "a fraction or a percentage, e.g. '0.01' or '1%'"
        raise _bad(text, f"{what} {raw!r} is not {hint}, or 'baseline' (e.g. 'baseline * 1.1')")
    number, unit = _decimal(text, match["number"]), match["unit"]
    if metric in LATENCY_METRICS:
        if not unit:
            raise _bad(
                text,
                f"{what} {raw!r} of a latency has no unit: write '{match['number']}ms' or "
                f"'{match['number']}s'",
            )
        if unit not in LATENCY_UNITS:
            raise _bad(text, f"unknown unit {unit!r} for {metric}: use 'ms' or 's' (e.g. '200ms', '1.5s')")
        return number * LATENCY_UNITS[unit]
    if metric == "error_rate":
        if unit == "%":
            if number > 100:
                raise _bad(text, f"{raw!r} is more than 100%: an error rate is between 0% and 100%")
            return number / 100
        if unit:
            raise _bad(
                text, f"unit {unit!r} does not apply to error_rate: write a percentage ('1%') or a fraction"
            )
        if number > 1:
            raise _bad(
                text,
                f"error_rate {raw!r} is more than 1 (100%); a bare number is a fraction: "
                f"write '{match['number']}%' or '{number / 100}'",
            )
        return number
    if unit:
        meaning = {"rps": "requests per second", "failures": "a count", "requests": "a count"}[metric]
        raise _bad(
            text, f"{metric} is {meaning} and takes a plain number, not {unit!r}: write e.g. '{metric} >= 50'"
        )
    return number


def _metric(text: str, raw: str) -> str:
    if raw in METRICS:
        return "avg" if raw == "mean" else raw
    if not raw:
        raise _bad(text, f"no metric before the comparison: write METRIC OP VALUE, e.g. {EXAMPLES}")
    lowered = raw.lower()
    if lowered in METRICS:
        return _metric(text, lowered)
    if ":" in raw or " " in raw:
        raise _bad(
            text,
            f"{raw!r} is not a metric; to judge one request name, quote it and add a colon, "
            f"e.g. '\"POST :predict\": p95 < 300ms'",
        )
    close = difflib.get_close_matches(raw, METRICS, n=1)
    suggestion = f" (did you mean {close[0]!r}?)" if close else ""
    raise _bad(text, f"unknown metric {raw!r}{suggestion}; known metrics: {', '.join(METRICS)}")


def parse(text: Any) -> Threshold:
    """Parses one SLO expression.

    Args:
        text: The expression, e.g. ``"p95 < 200ms"`` or ``'"POST :predict": error_rate < 1%'``.

    Returns:
        The parsed threshold.

    Raises:
        BadInput: the expression is not a string, is malformed, names an unknown metric, has a wrong or
            missing unit, or an impossible value; the message names the expression and the fix.
    """
    if not isinstance(text, str):
        raise BadInput(
            f"SLO expression {text!r} is a {type(text).__name__}, not a string: write each SLO as a string, "
            f"e.g. {EXAMPLES}"
        )
    if not text.strip():
        raise BadInput(f"an SLO expression is empty: write METRIC OP VALUE, e.g. {EXAMPLES}")
    scope: str | None = None
    body = text
    stripped = text.lstrip()
    if stripped[:1] in ("'", '"'):
        scoped = _SCOPE_RE.match(text)
        if not scoped:
            quote = stripped[0]
            raise _bad(
                text,
                f"the request name opened with {quote} is not closed by {quote} and a colon: write "
                f"{quote}METHOD name{quote}: METRIC OP VALUE, e.g. '\"POST :predict\": p95 < 300ms'",
            )
        scope, body = scoped["name"], scoped["rest"]
        if not scope.strip():
            raise _bad(text, 'the request name is empty: name a request from the stats, e.g. "POST :predict"')
    comparison = _COMPARISON_RE.match(body)
    if not comparison:
        raise _bad(text, f"no comparison operator (<, <=, >, >=, ==): write METRIC OP VALUE, e.g. {EXAMPLES}")
    raw_metric, op, raw_bound = comparison["metric"], comparison["op"], comparison["bound"]
    metric = _metric(text, raw_metric)
    if op not in OPERATORS:
        fix = {"=": "==", "=<": "<=", "=>": ">="}.get(op)
        advice = f"write {fix!r}" if fix else "use one of <, <=, >, >=, =="
        raise _bad(text, f"operator {op!r} is not supported: {advice}")
    if not raw_bound:
        raise _bad(text, f"nothing after {op!r}: give a value, e.g. '{metric} {op} {_example_value(metric)}'")
    if any(ch in raw_bound for ch in "<>="):
        raise _bad(text, "more than one comparison: write one comparison per expression (give several SLOs)")
    relative = _BASELINE_RE.match(raw_bound)
    if relative:
        baseline_op, operand = relative["op"], relative["operand"]
        if baseline_op is None:
            return Threshold(text, scope, metric, op, baseline_op="=")
        if not (operand or "").strip():
            raise _bad(
                text, f"nothing after 'baseline {baseline_op}': e.g. 'baseline * 1.1' or 'baseline + 20ms'"
            )
        if baseline_op == "*":
            factor = operand.strip()
            if not re.fullmatch(_NUMBER, factor):
                raise _bad(
                    text,
                    f"the factor {factor!r} after 'baseline *' is not a plain number: e.g. 'baseline * 1.1'",
                )
            return Threshold(
                text, scope, metric, op, baseline_op="*", baseline_operand=float(_decimal(text, factor))
            )
        offset = _quantity(text, metric, operand, what=f"the offset after 'baseline {baseline_op}'")
        return Threshold(text, scope, metric, op, baseline_op=baseline_op, baseline_operand=float(offset))
    if raw_bound.lower().startswith("baseline") or "baseline" in raw_bound.lower():
        raise _bad(
            text,
            "a relative bound is written 'baseline', 'baseline * FACTOR' or 'baseline + OFFSET' "
            "(e.g. 'baseline * 1.1')",
        )
    return Threshold(text, scope, metric, op, value=float(_quantity(text, metric, raw_bound)))


def _example_value(metric: str) -> str:
    if metric in LATENCY_METRICS:
        return "200ms"
    return {"error_rate": "1%", "failures": "0", "rps": "50", "requests": "1000"}[metric]


def parse_all(expressions: Any, *, baseline_given: bool | None = None) -> list[Threshold]:
    """Parses a list of SLO expressions.

    Args:
        expressions: A list (or tuple) of expression strings; at least one.
        baseline_given: When not None, whether a baseline stats artifact is given; relative
            expressions without one are rejected.

    Returns:
        The parsed thresholds, in order.

    Raises:
        BadInput: not a list, empty, any expression bad, or a baseline expression with no baseline.
    """
    if isinstance(expressions, str) or not isinstance(expressions, list | tuple):
        raise BadInput(
            f"SLOs must be a list of expression strings, got {type(expressions).__name__} "
            f"{_shown(str(expressions))}: e.g. slos=['p95 < 200ms', 'error_rate < 1%']"
        )
    if not expressions:
        raise BadInput(
            "no SLO expressions given: a gate with nothing to judge would pass any run; give at least one, "
            "e.g. 'p95 < 200ms'"
        )
    thresholds = [parse(expression) for expression in expressions]
    if baseline_given is False:
        for threshold in thresholds:
            if threshold.uses_baseline:
                raise _bad(
                    threshold.text,
                    "compares with 'baseline' but no baseline stats are given: pass the last release's stats "
                    "as the baseline (--baseline OTHER/stats.json, LatencyGateOp(baseline=...)) or use an "
                    "absolute value",
                )
    return thresholds


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
    if metric in LATENCY_METRICS:
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
    observed = observe(request_entry(stats, threshold.scope), threshold.metric)
    baseline_value = None
    if threshold.uses_baseline:
        if baseline is None:
            raise _bad(
                threshold.text,
                "compares with 'baseline' but no baseline stats are given: pass the last release's stats as "
                "the baseline or use an absolute value",
            )
        baseline_value = observe(
            request_entry(baseline, threshold.scope, which="baseline stats"), threshold.metric
        )
    bound = threshold.bound(baseline_value)
    note = None
    if observed is None:
        note = (
            "no successful requests to measure latency on"
            if threshold.is_latency
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


def evaluate_all(
    thresholds: Iterable[Threshold], stats: Mapping[str, Any], baseline: Mapping[str, Any] | None = None
) -> list[Evaluation]:
    """Evaluates every threshold, in order."""
    return [evaluate(threshold, stats, baseline) for threshold in thresholds]


def format_value(metric: str, value: float | None) -> str:
    """Formats a value of ``metric`` for people: ``183.2 ms``, ``0.52%``, ``52.3/s``, ``1200``."""
    if value is None:
        return "n/a"
    if metric in LATENCY_METRICS:
        if abs(value) >= 10_000:
            return f"{value / 1000:.4g} s"
        return f"{_trim(value, 3)} ms"
    if metric == "error_rate":
        return f"{_trim(value * 100, 4)}%"
    if metric == "rps":
        return f"{_trim(value, 2)}/s"
    return _trim(value, 3)


def _trim(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
