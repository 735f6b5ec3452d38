"""The SLO language's grammar: metrics, units, operators, and :func:`parse` into a :class:`Threshold`."""

from __future__ import annotations

import difflib
import operator as _operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from vertex_loadtest import generation_slos
from vertex_loadtest.errors import BadInput
from vertex_loadtest.stats import STATISTIC_KEYS

#: Latency metric -> key in ``latency_ms`` of a stats entry.
LATENCY_METRICS = STATISTIC_KEYS
#: Other metrics -> key in a stats entry.
COUNT_METRICS = {"error_rate": "failure_rate", "failures": "failures", "rps": "rps", "requests": "requests"}
#: A capacity sweep's result -> key in ``capacity.max_within_slo``.
CAPACITY_METRICS = {"capacity_rps": "rps", "capacity_users": "users"}
METRICS = (*LATENCY_METRICS, *COUNT_METRICS, *generation_slos.METRICS, *CAPACITY_METRICS)
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
_QUANTITY_RE = re.compile(rf"(?P<number>{_NUMBER})\s*(?P<unit>[A-Za-z%µ]*(?:/s)?)\Z")
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
        return _is_time(self.metric)

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


def _is_time(metric: str) -> bool:
    """Whether ``metric`` is a time in ms (a latency, TTFT, TPOT or ITL statistic)."""
    return metric in LATENCY_METRICS or metric in generation_slos.TIME_METRICS


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
        hint = "a number with its unit, e.g. '200ms'" if _is_time(metric) else "a number, e.g. '50'"
        if metric in ("error_rate", generation_slos.GOODPUT):
            hint = "a fraction or a percentage, e.g. '0.01' or '1%'"
        raise _bad(text, f"{what} {raw!r} is not {hint}, or 'baseline' (e.g. 'baseline * 1.1')")
    number, unit = _decimal(text, match["number"]), match["unit"]
    if _is_time(metric):
        if not unit:
            raise _bad(
                text,
                f"{what} {raw!r} of a latency has no unit: write '{match['number']}ms' or "
                f"'{match['number']}s'",
            )
        if unit not in LATENCY_UNITS:
            raise _bad(text, f"unknown unit {unit!r} for {metric}: use 'ms' or 's' (e.g. '200ms', '1.5s')")
        return number * LATENCY_UNITS[unit]
    if metric in ("error_rate", generation_slos.GOODPUT):
        if unit == "%":
            if number > 100:
                raise _bad(text, f"{raw!r} is more than 100%: a share of requests is between 0% and 100%")
            return number / 100
        if unit:
            raise _bad(
                text, f"unit {unit!r} does not apply to error_rate: write a percentage ('1%') or a fraction"
            )
        if number > 1:
            raise _bad(
                text,
                f"{metric} {raw!r} is more than 1 (100%); a bare number is a fraction: write '{raw}%' "
                f"or '{number / 100}'{generation_slos.rate_hint(metric, raw)}",
            )
        return number
    if unit == "/s" and metric in ("rps", *generation_slos.RATE_METRICS):
        return number
    if unit:
        meanings = {"rps": "requests per second", "failures": "a count", "requests": "a count"}
        meanings |= {"capacity_rps": "requests per second", "capacity_users": "a count"}
        meaning = {**meanings, **generation_slos.MEANINGS}[metric]
        raise _bad(
            text, f"{metric} is {meaning} and takes a plain number, not {unit!r}: write e.g. '{metric} >= 50'"
        )
    return number


def _metric(text: str, raw: str) -> str:
    if raw in METRICS:
        return "avg" if raw == "mean" else generation_slos.canonical(raw, "")
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
    metric = generation_slos.canonical(_metric(text, raw_metric), "/s" if raw_bound.endswith("/s") else "")
    if scope is not None and metric in CAPACITY_METRICS:
        raise _bad(
            text,
            f"{metric} is the whole sweep's result and takes no request name: write e.g. '{metric} >= 50'",
        )
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
    if _is_time(metric):
        return "200ms"
    examples = {"error_rate": "1%", "failures": "0", "rps": "50", "requests": "1000", "output_tps": "1000"}
    examples |= {"capacity_users": "8"}
    return examples.get(metric, "95%" if metric == generation_slos.GOODPUT else "50")


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
