"""The SLO expression parser and evaluator: grammar, units, operators, boundaries, errors."""

import math
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests import gate_stats
from vertex_loadtest import slo
from vertex_loadtest.errors import BadInput
from vertex_loadtest.slo import evaluate, format_value, margin, parse, parse_all

OPERATORS = ["<", "<=", ">", ">=", "=="]
LATENCY = ["p50", "p90", "p95", "p99", "p99.9", "avg", "min", "max"]


@pytest.mark.parametrize(
    ("text", "scope", "metric", "op", "value"),
    [
        ("p95 < 200ms", None, "p95", "<", 200.0),
        ("p99 <= 1.5s", None, "p99", "<=", 1500.0),
        ("p99.9<2s", None, "p99.9", "<", 2000.0),
        ("  p50   >=   .5 ms ", None, "p50", ">=", 0.5),
        ("p95 < 0.1s", None, "p95", "<", 100.0),  # exactly 100, not 100.00000000000001
        ("avg < 120ms", None, "avg", "<", 120.0),
        ("mean < 120ms", None, "avg", "<", 120.0),
        ("min > 1ms", None, "min", ">", 1.0),
        ("max < 1e3ms", None, "max", "<", 1000.0),
        ("error_rate < 1%", None, "error_rate", "<", 0.01),
        ("error_rate < 0.01", None, "error_rate", "<", 0.01),
        ("error_rate <= 100%", None, "error_rate", "<=", 1.0),
        ("error_rate == 0", None, "error_rate", "==", 0.0),
        ("failures == 0", None, "failures", "==", 0.0),
        ("rps >= 50", None, "rps", ">=", 50.0),
        ("requests >= 1000", None, "requests", ">=", 1000.0),
        ('"POST :predict": p95 < 300ms', "POST :predict", "p95", "<", 300.0),
        ("'GET /health' : error_rate < 0.5%", "GET /health", "error_rate", "<", 0.005),
        ('"POST :predict":rps>=10', "POST :predict", "rps", ">=", 10.0),
        ("P95 < 200ms", None, "p95", "<", 200.0),  # metric names are case-insensitive
    ],
)
def test_parses_absolute_expressions(text, scope, metric, op, value):
    threshold = parse(text)
    assert (threshold.scope, threshold.metric, threshold.operator, threshold.value) == (
        scope,
        metric,
        op,
        value,
    )
    assert threshold.text == text
    assert not threshold.uses_baseline


@pytest.mark.parametrize(
    ("text", "op", "operand", "baseline_value", "bound"),
    [
        ("p95 < baseline * 1.10", "*", 1.1, 200.0, 220.0),
        ("rps >= baseline * 0.9", "*", 0.9, 100.0, 90.0),
        ("p95 <= baseline", "=", None, 150.0, 150.0),
        ("p99 < baseline + 20ms", "+", 20.0, 180.0, 200.0),
        ("p99 < baseline + 0.02s", "+", 20.0, 180.0, 200.0),
        ("rps > baseline - 5", "-", 5.0, 50.0, 45.0),
        ("error_rate <= baseline + 0.5%", "+", 0.005, 0.01, 0.015),
        ('"POST :predict": p95 < baseline*1.05', "*", 1.05, 100.0, 105.0),
    ],
)
def test_parses_baseline_expressions(text, op, operand, baseline_value, bound):
    threshold = parse(text)
    assert threshold.uses_baseline
    assert (threshold.baseline_op, threshold.baseline_operand) == (op, operand)
    assert threshold.bound(baseline_value) == bound
    assert threshold.bound(None) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("p95 200ms", "no comparison operator"),
        ("p96 < 200ms", "unknown metric 'p96' (did you mean"),
        ("errors_rate < 1%", "unknown metric 'errors_rate' (did you mean 'error_rate'?)"),
        ("latency < 200ms", "unknown metric 'latency'"),
        ("p95 < 200", "has no unit: write '200ms' or '200s'"),
        ("p95 < 200us", "unknown unit 'us'"),
        ("p95 < 2%", "unknown unit '%'"),
        ("p95 = 200ms", "operator '=' is not supported: write '=='"),
        ("p95 =< 200ms", "write '<='"),
        ("p95 != 200ms", "operator '!=' is not supported"),
        ("p95 <", "nothing after '<'"),
        ("< 200ms", "no metric before the comparison"),
        ("p95 < -5ms", "is negative"),
        ("p95 < 100ms < 200ms", "more than one comparison"),
        ("p95 < fast", "is not a number with its unit"),
        ("rps >= 50ms", "rps is requests per second and takes a plain number, not 'ms'"),
        ("requests >= 1k", "takes a plain number, not 'k'"),
        ("failures == 0%", "takes a plain number"),
        ("error_rate < 5", "write '5%' or '0.05'"),
        ("error_rate < 101%", "more than 100%"),
        ("error_rate < 1ms", "does not apply to error_rate"),
        ("POST :predict: p95 < 300ms", "quote it and add a colon"),
        ('"POST :predict p95 < 300ms', "is not closed"),
        ('"": p95 < 300ms', "the request name is empty"),
        ("p95 < baseline * 1.1ms", "is not a plain number"),
        ("p95 < baseline *", "nothing after 'baseline *'"),
        ("p95 < baseline + 20", "has no unit"),
        ("p95 < 1.1 * baseline", "a relative bound is written 'baseline'"),
        ("p95 < Baseline * 1.1", "a relative bound is written 'baseline'"),
        ("", "is empty"),
        ("   ", "is empty"),
    ],
)
def test_rejects_bad_expressions_naming_them_and_the_fix(text, fragment):
    with pytest.raises(BadInput) as raised:
        parse(text)
    message = str(raised.value)
    assert fragment in message
    if text.strip():
        assert repr(text) in message


@pytest.mark.parametrize("value", [200, 1.5, None, ["p95 < 1s"], {"p95": 200}])
def test_rejects_non_string_expressions(value):
    with pytest.raises(BadInput, match="not a string"):
        parse(value)


def test_parse_all_needs_a_non_empty_list_and_a_baseline_for_relative_expressions():
    assert [t.metric for t in parse_all(["p95 < 1s", "rps > 1"])] == ["p95", "rps"]
    assert parse_all(("p95 < 1s",))[0].metric == "p95"
    with pytest.raises(BadInput, match="no SLO expressions given"):
        parse_all([])
    with pytest.raises(BadInput, match="must be a list"):
        parse_all("p95 < 200ms")
    with pytest.raises(BadInput, match="no baseline stats are given"):
        parse_all(["rps > 1", "p95 < baseline * 1.1"], baseline_given=False)
    assert parse_all(["p95 < baseline * 1.1"], baseline_given=True)[0].uses_baseline
    assert parse_all(["p95 < baseline * 1.1"])[0].uses_baseline  # unknown: checked later


@pytest.mark.parametrize(
    ("op", "observed", "expected"),
    [
        ("<", 199.9, True),
        ("<", 200.0, False),  # exactly at the threshold: a strict bound fails
        ("<", 200.1, False),
        ("<=", 200.0, True),
        ("<=", 200.1, False),
        (">", 200.0, False),
        (">", 200.1, True),
        (">=", 200.0, True),
        (">=", 199.9, False),
        ("==", 200.0, True),
        ("==", 200.1, False),
    ],
)
def test_boundary_exactly_at_the_threshold(op, observed, expected):
    data = gate_stats.stats(gate_stats.entry(latency_ms=gate_stats.latency(p95=observed)))
    result = evaluate(parse(f"p95 {op} 200ms"), data)
    assert result.passed is expected
    assert result.observed == observed
    assert result.bound == 200.0
    assert (result.margin > 0 or (result.margin == 0 and op in ("<=", ">=", "=="))) is expected
    assert (result.margin == 0) is (observed == 200.0)


@pytest.mark.parametrize(
    ("text", "observed"),
    [("p95 < 0.2s", 200.0), ("p95 <= 0.2s", 200.0), ("error_rate < 1%", 0.01), ("error_rate <= 1%", 0.01)],
)
def test_seconds_and_percent_boundaries_are_exact(text, observed):
    if text.startswith("p95"):
        data = gate_stats.stats(gate_stats.entry(latency_ms=gate_stats.latency(p95=observed)))
    else:
        data = gate_stats.stats(gate_stats.entry(requests=1000, failures=10))
        assert data["totals"]["failure_rate"] == observed
    result = evaluate(parse(text), data)
    assert result.passed is ("<=" in text)
    assert result.margin == 0


@pytest.mark.parametrize(
    ("text", "expected_observed"),
    [
        ("p50 < 1s", 100.0),
        ("p90 < 1s", 150.0),
        ("avg < 1s", 105.0),
        ("min < 1s", 50.0),
        ("max < 1s", 350.0),
        ("p99.9 < 1s", 300.0),
        ("error_rate < 1%", 0.02),
        ("failures < 100", 20.0),
        ("requests > 1", 1000.0),
        ("rps > 1", 100.0),
    ],
)
def test_observes_each_metric_from_the_documented_fields(text, expected_observed):
    data = gate_stats.stats(gate_stats.entry(requests=1000, failures=20))
    assert evaluate(parse(text), data).observed == pytest.approx(expected_observed)


def test_latency_metrics_read_successful_requests_only():
    totals = gate_stats.entry(requests=100, failures=50)
    totals["latency_ms"] = gate_stats.latency(p95=300.0)
    totals["failure_latency_ms"] = gate_stats.latency(p95=2.0)
    totals["all_latency_ms"] = gate_stats.latency(p95=150.0)
    assert evaluate(parse("p95 < 200ms"), gate_stats.stats(totals)).observed == 300.0


def test_scoped_expressions_judge_one_request_name():
    predict = gate_stats.entry(latency_ms=gate_stats.latency(p95=400.0))
    health = gate_stats.entry(latency_ms=gate_stats.latency(p95=5.0))
    totals = gate_stats.entry(requests=2000, latency_ms=gate_stats.latency(p95=390.0))
    data = gate_stats.stats(totals, {gate_stats.PREDICT: predict, gate_stats.HEALTH: health})
    assert evaluate(parse('"GET /health": p95 < 10ms'), data).passed
    assert not evaluate(parse('"POST :predict": p95 < 300ms'), data).passed
    with pytest.raises(
        BadInput, match=r"'POST :predic' is not in the stats \(did you mean 'POST :predict'\?\)"
    ):
        evaluate(parse('"POST :predic": p95 < 300ms'), data)


def test_null_latency_never_passes():
    data = gate_stats.stats(gate_stats.entry(requests=10, failures=10))
    for op in OPERATORS:
        result = evaluate(parse(f"p95 {op} 0ms"), data)
        assert not result.passed
        assert result.observed is None and result.margin is None
        assert "no successful requests" in result.note


def test_baseline_expressions_compare_with_the_same_metric_of_the_baseline():
    current = gate_stats.stats(gate_stats.entry(latency_ms=gate_stats.latency(p95=215.0)))
    baseline = gate_stats.stats(gate_stats.entry(latency_ms=gate_stats.latency(p95=200.0)))
    assert evaluate(parse("p95 < baseline * 1.10"), current, baseline).passed
    regressed = evaluate(parse("p95 < baseline * 1.05"), current, baseline)
    assert not regressed.passed
    assert (regressed.baseline, regressed.bound, regressed.margin) == (200.0, 210.0, -5.0)
    with pytest.raises(BadInput, match="no baseline stats are given"):
        evaluate(parse("p95 < baseline * 1.1"), current)
    empty_baseline = gate_stats.stats(gate_stats.entry(requests=10, failures=10))
    result = evaluate(parse("p95 < baseline * 1.1"), current, empty_baseline)
    assert not result.passed and "baseline has no successful requests" in result.note


def test_format_value_reads_well():
    assert format_value("p95", 183.2) == "183.2 ms"
    assert format_value("p99", 15000.0) == "15 s"
    assert format_value("error_rate", 0.0052) == "0.52%"
    assert format_value("rps", 52.25) == "52.25/s"
    assert format_value("requests", 1200.0) == "1200"
    assert format_value("p95", None) == "n/a"


# --- properties -------------------------------------------------------------------------------

decimals = st.decimals(min_value=0, max_value=100_000, places=3, allow_nan=False, allow_infinity=False)


@given(
    value=decimals,
    unit=st.sampled_from(["ms", "s"]),
    metric=st.sampled_from(LATENCY),
    op=st.sampled_from(OPERATORS),
)
def test_latency_values_parse_to_exact_milliseconds(value, unit, metric, op):
    text = f"{metric} {op} {value}{unit}"
    threshold = parse(text)
    expected = value * (1000 if unit == "s" else 1)
    assert threshold.value == float(expected)
    assert threshold.operator == op
    assert threshold.metric == ("avg" if metric == "mean" else metric)


@given(percent=st.decimals(min_value=0, max_value=100, places=4), op=st.sampled_from(OPERATORS))
def test_percent_and_fraction_mean_the_same_error_rate(percent, op):
    as_percent = parse(f"error_rate {op} {percent}%")
    as_fraction = parse(f"error_rate {op} {percent / 100}")
    assert as_percent.value == as_fraction.value == float(percent / 100)


@given(
    observed=st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
    bound=decimals,
    op=st.sampled_from(OPERATORS),
    unit=st.sampled_from(["ms", "s"]),
)
def test_evaluation_agrees_with_python_comparison_and_margin_sign(observed, bound, op, unit):
    bound_ms = float(bound * (1000 if unit == "s" else 1))
    data = gate_stats.stats(gate_stats.entry(latency_ms=gate_stats.latency(p95=observed)))
    result = evaluate(parse(f"p95 {op} {bound}{unit}"), data)
    expected = {"<": observed < bound_ms, "<=": observed <= bound_ms, ">": observed > bound_ms}.get(
        op, {">=": observed >= bound_ms, "==": observed == bound_ms}.get(op)
    )
    assert result.passed is expected
    assert result.bound == bound_ms
    assert math.isfinite(result.margin)
    if result.margin > 0:
        assert result.passed or op == "=="
    if result.margin < 0:
        assert not result.passed


@given(
    value=st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
    op=st.sampled_from(OPERATORS),
)
def test_a_value_exactly_at_the_threshold_passes_only_inclusive_operators(value, op):
    text = f"p95 {op} {Decimal(repr(value))}ms"
    data = gate_stats.stats(gate_stats.entry(latency_ms=gate_stats.latency(p95=value)))
    result = evaluate(parse(text), data)
    assert result.passed is (op in ("<=", ">=", "=="))
    assert result.margin == 0


@given(
    metric=st.sampled_from(["rps", "requests", "failures"]),
    value=st.integers(min_value=0, max_value=10**9),
    delta=st.integers(min_value=-3, max_value=3),
    op=st.sampled_from(OPERATORS),
)
def test_count_metrics(metric, value, delta, op):
    observed = value + delta
    assume(observed >= 0)
    threshold = parse(f"{metric} {op} {value}")
    assert threshold.value == value
    assert (
        margin(op, float(observed), float(value))
        == {
            "<": value - observed,
            "<=": value - observed,
            ">": observed - value,
            ">=": observed - value,
            "==": -abs(observed - value),
        }[op]
    )


@given(
    name=st.text(alphabet=st.characters(blacklist_characters="\"'", blacklist_categories=("Cs",)), min_size=1)
)
def test_any_quoted_request_name_is_a_scope(name):
    assume(name.strip())
    threshold = parse(f'"{name}": p95 < 1s')
    assert threshold.scope == name


@given(text=st.text(max_size=40))
def test_parse_either_succeeds_or_raises_bad_input(text):
    try:
        threshold = parse(text)
    except BadInput as error:
        assert str(error)
    else:
        assert threshold.metric in slo.METRICS
