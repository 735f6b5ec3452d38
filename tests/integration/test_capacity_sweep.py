"""The capacity sweep against loopback servers of known capacity (k slots, service time s: k / s rps),
with real Locust runs per stage."""

import html
from pathlib import Path

import pytest

from vertex_loadtest.latency_gate.verdict import GateStatus, judge
from vertex_loadtest.locust_load_test.capacity import StageKind
from vertex_loadtest.locust_load_test.runner import LoadTest
from vertex_loadtest.locust_load_test.sweep import Sweep, run_sweep
from vertex_loadtest.rehearsal.prediction_server import Behaviour, PredictionServer
from vertex_loadtest.stats import load_stats

pytestmark = pytest.mark.slow
DATA = Path(__file__).parent.parent / "data"


@pytest.mark.parametrize(("slots", "service"), [(4, "100ms"), (3, "50ms")])
def test_the_sweep_finds_the_capacity_of_k_slots_of_service_time_s(tmp_path, slots, service):
    seconds = float(service.removesuffix("ms")) / 1000
    capacity = slots / seconds  # 40 and 60 rps
    with PredictionServer(Behaviour(latency=service, slots=slots)) as server:
        test = LoadTest(host=server.url, target_rps=capacity / 3, run_time="2m", processes=1)
        # Resolution 5%: the first bad stage is at or above the limit, the last good within 5% below it,
        # and a stage's achieved rate may fall a little short of its target.
        plan = Sweep((f"p95 < {3 * seconds * 1000:g}ms", "error_rate < 1%"), stage_time="3s", resolution=0.05)
        outcome = run_sweep(test, plan, tmp_path)
    found = outcome.stats["capacity"]
    best = found["max_within_slo"]
    assert best is not None, found["summary"]
    assert abs(best["rps"] - capacity) <= 0.1 * capacity, found["summary"]
    assert found["limited_by"] == f"p95 < {3 * seconds * 1000:g}ms"
    assert found["conclusive"] is True
    verdicts = {stage["verdict"] for stage in found["stages"]}
    assert verdicts == {"within", "breached"}
    # Each stage's own stats and report, and the chart at the top of the report.
    for stage in found["stages"]:
        assert load_stats(tmp_path / stage["directory"])["load"]["target_rps"] == stage["target"]
    report = outcome.report.read_text(encoding="utf-8")
    assert report.index("vertex-loadtest-capacity") < report.index('<div id="root">')  # above Locust's app
    assert "<svg" in report and html.escape(found["summary"]) in report
    # The stats the gate reads: capacity like any metric, and the shown stage holds the stage SLOs.
    assert load_stats(tmp_path)["capacity"]["max_within_slo"] == best
    # (3 s stages make fewer requests than the gate's default min_requests.)
    verdict = judge(outcome.stats, [f"capacity_rps >= {0.9 * capacity:g}", "p95 < 1s"], min_requests=50)
    assert verdict.status is GateStatus.PASSED, verdict.summary()
    assert judge(outcome.stats, [f"capacity_rps >= {1.2 * capacity:g}"]).status is GateStatus.FAILED


def test_a_server_that_never_degrades_is_reported_as_holding_everything_tried(tmp_path):
    with PredictionServer(Behaviour(latency="5ms")) as server:
        test = LoadTest(host=server.url, target_rps=5, run_time="20s", processes=1)
        outcome = run_sweep(test, Sweep(("p95 < 500ms",), stage_time="3s"), tmp_path)
    found = outcome.stats["capacity"]
    assert found["limited_by"] is None and found["stopped"] == "run-time"
    assert [stage["target"] for stage in found["stages"]] == [5.0, 10.0, 20.0][: len(found["stages"])]
    assert all(stage["verdict"] == "within" for stage in found["stages"])
    assert found["max_within_slo"]["target"] == found["stages"][-1]["target"]
    assert "held everything tried" in found["summary"] and "at least" in found["summary"]
    assert found["conclusive"] is False


def test_a_saturated_generator_stops_the_sweep_as_inconclusive_not_as_a_capacity(tmp_path):
    with PredictionServer(Behaviour(latency="5ms")) as server:
        test = LoadTest(
            host=server.url,
            target_rps=20,
            run_time="1m",
            processes=1,
            locustfile=str(DATA / "cpu_heavy_locustfile.py"),
        )
        outcome = run_sweep(test, Sweep(("p95 < 500ms",), stage_time="3s"), tmp_path)
    found = outcome.stats["capacity"]
    assert found["limited_by"] == "generator", found["summary"]
    assert found["stages"][-1]["verdict"] == "inconclusive"
    assert found["conclusive"] is False and found["summary"].startswith("inconclusive")
    verdict = judge(outcome.stats, ["capacity_rps >= 1"])
    assert verdict.status is GateStatus.INCONCLUSIVE, verdict.summary()


def test_a_users_sweep_finds_how_many_concurrent_users_k_slots_hold(tmp_path):
    """Stages of concurrent users (the closed model generative APIs use): k slots hold k users at the
    service time; one more user queues behind them."""
    with PredictionServer(Behaviour(latency="50ms", slots=4)) as server:
        test = LoadTest(host=server.url, users=1, run_time="2m", processes=1)
        plan = Sweep(("p95 < 75ms",), stage_time="3s", kind=StageKind.USERS)
        outcome = run_sweep(test, plan, tmp_path)
    found = outcome.stats["capacity"]
    assert [stage["target"] for stage in found["stages"]][:4] == [1, 2, 4, 8]
    assert found["max_within_slo"]["users"] == 4, found["summary"]
    assert found["max_within_slo"]["rps"] == pytest.approx(80, rel=0.1)  # 4 / 50 ms
    assert all(stage["kind"] == "users" for stage in found["stages"])
