"""The gate's verdict rules on stats dicts built per the documented schema: no vacuous passes."""

import json
import math
import subprocess
import sys

import pytest

from tests import gate_stats
from tests.gate_stats import entry, latency, stats
from vertex_loadtest.errors import BadInput, GateFailed
from vertex_loadtest.latency_gate.gate import run_gate
from vertex_loadtest.latency_gate.render import MAX_MARKDOWN_BYTES, markdown
from vertex_loadtest.latency_gate.verdict import DEFAULT_MIN_REQUESTS, GateStatus, judge
from vertex_loadtest.stats import LOOP_LAG_P99_LIMIT_MS

PASSED, FAILED, INCONCLUSIVE = GateStatus.PASSED, GateStatus.FAILED, GateStatus.INCONCLUSIVE

SLOS = ["p95 < 200ms", "error_rate < 1%", "rps >= 50"]


def test_a_healthy_run_passes_with_per_expression_numbers():
    verdict = judge(stats(), SLOS)
    assert verdict.status == PASSED and verdict.passed
    assert [(e.observed, e.bound, e.passed) for e in verdict.evaluations] == [
        (180.0, 200.0, True),
        (0.0, 0.01, True),
        (100.0, 50.0, True),
    ]
    assert [e.margin for e in verdict.evaluations] == [20.0, 0.01, 50.0]
    assert not verdict.failures and not verdict.inconclusive


def test_a_breach_fails_and_names_the_expression():
    verdict = judge(stats(entry(latency_ms=latency(p95=250.0))), SLOS)
    assert verdict.status == FAILED
    assert [e.threshold.text for e in verdict.breaches] == ["p95 < 200ms"]
    assert "'p95 < 200ms' BREACHED: observed 250 ms, threshold < 200 ms" in verdict.summary()


def test_zero_requests_fails_whatever_the_flags():
    data = stats(entry(requests=0), rps_shortfall=False)
    verdict = judge(data, ["requests >= 0"], allow_incomplete=True, allow_inconclusive=True, min_requests=0)
    assert verdict.status == FAILED
    assert "made no requests" in verdict.failures[0]
    assert verdict.evaluations[0].passed  # the expression holds, the run still fails


def test_zero_successes_fails_whatever_the_flags():
    data = stats(entry(requests=500, failures=500, errors={"server": 0, "throttled": 500}))
    verdict = judge(data, ["error_rate <= 100%"], allow_incomplete=True, allow_inconclusive=True)
    assert verdict.status == FAILED
    assert "none of the 500 requests succeeded (errors: 500 throttled)" in verdict.failures[0]


def test_an_incomplete_run_fails_unless_allowed():
    data = stats(complete=False, stop_reason="interrupted")
    verdict = judge(data, SLOS)
    assert verdict.status == FAILED
    assert "did not complete (stop reason: interrupted)" in verdict.failures[0]
    assert "allow_incomplete" in verdict.failures[0]
    allowed = judge(data, SLOS, allow_incomplete=True)
    assert allowed.status == PASSED
    assert any("allow_incomplete" in note for note in allowed.notes)


def test_a_saturated_generator_is_inconclusive_unless_allowed():
    data = stats(saturated=True, cpu_peak_percent=98.5)
    verdict = judge(data, SLOS)
    assert verdict.status == INCONCLUSIVE and not verdict.passed
    assert (
        "saturated (CPU peak 98.5%): it measured its own queueing, not the endpoint"
        in verdict.inconclusive[0]
    )
    assert judge(data, SLOS, allow_inconclusive=True).status == PASSED


def test_a_lagging_event_loop_is_inconclusive_unless_allowed():
    assert judge(stats(loop_lag_p99_ms=LOOP_LAG_P99_LIMIT_MS), SLOS).status == PASSED  # at the limit
    assert judge(stats(loop_lag_p99_ms=None), SLOS).status == PASSED  # no samples (an older stats.json)
    data = stats(loop_lag_p99_ms=12.5)
    verdict = judge(data, SLOS)
    assert verdict.status == INCONCLUSIVE
    assert "event loop woke 12.5 ms late at p99 (limit 5 ms)" in verdict.inconclusive[0]
    assert judge(data, SLOS, allow_inconclusive=True).status == PASSED


def test_a_target_rate_shortfall_is_inconclusive_coordinated_omission():
    data = stats(target_rps=200.0, achieved_rps=120.0, rps_shortfall=True)
    verdict = judge(data, SLOS)
    assert verdict.status == INCONCLUSIVE
    assert "120 of 200 rps" in verdict.inconclusive[0]
    assert "coordinated omission" in verdict.inconclusive[0]
    assert judge(data, SLOS, allow_inconclusive=True).passed


def test_too_few_requests_is_inconclusive_with_a_configurable_minimum():
    data = stats(entry(requests=DEFAULT_MIN_REQUESTS - 1))
    assert judge(data, SLOS[:2]).status == INCONCLUSIVE
    assert judge(stats(entry(requests=DEFAULT_MIN_REQUESTS)), SLOS[:2]).status == PASSED
    assert judge(data, SLOS[:2], min_requests=10).status == PASSED
    assert "fewer than min_requests=100" in judge(data, SLOS[:2]).inconclusive[0]


@pytest.mark.parametrize("bad", [-1, 1.5, "100", True, None])
def test_min_requests_must_be_a_count(bad):
    with pytest.raises(BadInput, match="min_requests"):
        judge(stats(), SLOS, min_requests=bad)


def test_hard_failures_win_over_inconclusive_and_inconclusive_over_breaches():
    both = stats(entry(requests=10, failures=10), saturated=True)
    assert judge(both, SLOS).status == FAILED
    breached_and_saturated = stats(entry(latency_ms=latency(p95=900.0)), saturated=True)
    verdict = judge(breached_and_saturated, SLOS)
    assert verdict.status == INCONCLUSIVE  # the numbers are the generator's: the breach is not proven
    assert len(verdict.breaches) == 1
    assert judge(breached_and_saturated, SLOS, allow_inconclusive=True).status == FAILED


def test_a_scoped_entry_without_successes_fails_its_latency_expression():
    data = stats(
        entry(requests=2000, failures=1000),
        {gate_stats.PREDICT: entry(requests=1000), gate_stats.HEALTH: entry(requests=1000, failures=1000)},
    )
    verdict = judge(data, ['"POST :predict": p95 < 1s', '"GET /health": p95 < 1s'])
    assert [e.passed for e in verdict.evaluations] == [True, False]
    assert verdict.status == FAILED


def test_unknown_request_names_and_missing_baselines_are_bad_input():
    with pytest.raises(BadInput, match="'POST :predictt' is not in the stats"):
        judge(stats(), ['"POST :predictt": p95 < 1s'])
    with pytest.raises(BadInput, match="no baseline stats are given"):
        judge(stats(), ["p95 < baseline * 1.1"])
    baseline = stats(requests={"GET /other": entry()})
    with pytest.raises(BadInput, match="not in the baseline stats"):
        judge(stats(), ['"POST :predict": p95 < baseline * 1.1'], baseline)


def test_baseline_regression_gate():
    baseline = stats(entry(rps=100.0, latency_ms=latency(p95=200.0)))
    current = stats(entry(rps=95.0, latency_ms=latency(p95=230.0)))
    verdict = judge(current, ["p95 < baseline * 1.10", "rps >= baseline * 0.9"], baseline)
    assert [e.passed for e in verdict.evaluations] == [False, True]
    assert verdict.evaluations[0].bound == 220.0
    assert "baseline 200 ms" in markdown(verdict)


def test_malformed_stats_sections_are_bad_input():
    data = stats()
    data["totals"] = None
    with pytest.raises(BadInput, match="no 'totals' object"):
        judge(data, SLOS)


def test_metrics_are_all_finite_and_leave_out_missing_values():
    data = stats(entry(requests=10, failures=10))
    data["totals"]["rps"] = float("nan")
    metrics = judge(data, SLOS).metrics()
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    assert "slo1_p95_observed" not in metrics and "rps" not in metrics
    assert metrics["slo1_p95_threshold"] == 200.0 and metrics["slo1_p95_passed"] == 0.0
    assert metrics["passed"] == 0.0
    healthy = judge(stats(), SLOS).metrics()
    assert healthy["slo1_p95_margin"] == 20.0 and healthy["slo2_error_rate_threshold"] == 0.01
    assert healthy["passed"] == 1.0 and healthy["breaches"] == 0.0


def test_markdown_reads_well_and_stays_small():
    verdict = judge(stats(entry(latency_ms=latency(p95=250.0))), [*SLOS, '"POST :predict": p99.9 <= 1s'])
    text = markdown(verdict)
    assert text.startswith("## Latency gate: ❌ FAILED")
    assert "| 1 | `p95 < 200ms` | 250 ms | < 200 ms | -50 ms (-25.0%) | ❌ fail |" in text
    assert '| 4 | `"POST :predict": p99.9 <= 1s` |' in text
    assert "successful requests only" in text
    many = judge(stats(), [f"p95 < {i}ms" for i in range(1, 2001)])
    assert len(markdown(many).encode()) < MAX_MARKDOWN_BYTES
    assert "more SLOs" in markdown(many)


def test_percentile_resolution_is_noted_for_small_samples():
    data = stats(entry(requests=150))
    notes = judge(data, ["p99.9 < 1s", "p95 < 1s"]).notes
    assert notes == [
        "p99.9 comes from 150 successful requests (fewer than 1000), so it is the slowest sample or close "
        "to it"
    ]


def test_run_gate_writes_the_verdict_logs_metrics_and_fails_on_breach(tmp_path):
    stats_dir = tmp_path / "stats"
    gate_stats.write(stats_dir, stats(entry(latency_ms=latency(p95=250.0))))
    logged: dict[str, float] = {}
    verdict = run_gate(
        stats_dir, SLOS, verdict_path=tmp_path / "out" / "verdict.md", log_metric=logged.__setitem__
    )
    assert not verdict.passed
    assert (tmp_path / "out" / "verdict.md").read_text().startswith("## Latency gate: ❌ FAILED")
    assert logged == verdict.metrics()
    json.dumps(logged, allow_nan=False)
    with pytest.raises(GateFailed, match="1 of 3 SLOs breached") as raised:
        run_gate(stats_dir / "stats.json", SLOS, verdict_path=tmp_path / "v2.md", fail_on_breach=True)
    assert raised.value.verdict.status == FAILED
    assert (tmp_path / "v2.md").exists()  # written before failing


def test_run_gate_checks_expressions_before_reading_files(tmp_path):
    with pytest.raises(BadInput, match="unknown metric"):
        run_gate(tmp_path / "missing", ["p101 < 1s"])
    with pytest.raises(BadInput, match="does not exist"):
        run_gate(tmp_path / "missing", SLOS)


def test_the_gate_runtime_imports_neither_kfp_nor_locust():
    probe = (
        "import sys, vertex_loadtest.latency_gate.gate, vertex_loadtest.slo\n"
        "heavy = ('kfp', 'locust', 'gevent', 'google.cloud.aiplatform')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_a_percentage_slo_margin_reads_in_percentage_points():
    clean = markdown(judge(stats(), ["error_rate < 1%"]))
    assert "| `error_rate < 1%` | 0% | < 1% | 1 pp to spare | ✅ pass |" in clean
    breached = markdown(judge(stats(entry(failures=15)), ["error_rate < 1%"]))
    assert "| 1.5% | < 1% | 0.5 pp over | ❌ fail |" in breached
    latency_row = markdown(judge(stats(), ["p95 < 200ms"]))
    assert "| +20 ms (+10.0%) |" in latency_row, "other SLOs keep their unit and relative margin"


def test_a_run_refused_everywhere_says_the_token_is_missing_or_expired():
    refused = stats(entry(failures=1000, errors={"server": 0, "auth": 1000}))
    verdict = judge(refused, ["p95 < 200ms"])
    assert verdict.status == FAILED
    assert "the token is missing or expired" in markdown(verdict) and "auth google" in verdict.summary()
    throttled = judge(stats(entry(failures=1000, errors={"server": 0, "throttled": 1000})), ["p95 < 200ms"])
    assert "token" not in markdown(throttled)
