"""The capacity sweep's pure parts: the search, stage verdicts, the capacity section, the gate's capacity
metrics and sizing advice, and the chart."""

import copy
import os
import re
import time
from pathlib import Path

import pytest

from tests.gate_stats import entry, latency, stats
from vertex_loadtest import slo, svg_chart
from vertex_loadtest.errors import BadInput
from vertex_loadtest.latency_gate.render import markdown
from vertex_loadtest.latency_gate.verdict import GateStatus, judge, sizing_line
from vertex_loadtest.locust_load_test import capacity, capacity_report
from vertex_loadtest.locust_load_test.capacity import Search, StageKind, StageResult, StageVerdict
from vertex_loadtest.locust_load_test.runnable import RunnableSampler

SLOS = ("p95 < 300ms", "error_rate < 1%")


def search_against(limit: float, start: float, resolution: float = 0.1, kind=StageKind.RPS) -> Search:
    """Runs the search against an endpoint that holds every load up to ``limit``."""
    search = Search(start=start, resolution=resolution, kind=kind)
    for _ in range(50):
        load = search.next_load()
        if load is None:
            return search
        search.record(load, load <= limit)
    raise AssertionError("the search did not end")


@pytest.mark.parametrize(("limit", "start"), [(40, 12), (60, 20), (1000, 1), (7.3, 50), (123, 123)])
def test_the_search_doubles_then_bisects_to_the_resolution(limit, start):
    search = search_against(limit, start)
    assert search.good is not None and search.bad is not None
    assert search.good <= limit < search.bad
    assert search.bad - search.good <= 0.1 * search.good or search.bad == search.good * 2 == search.tried[-1]
    assert limit / search.good <= 1.1 + 1e-9


def test_the_search_doubles_from_the_first_stage_until_a_stage_breaches():
    search = search_against(100, 10)
    assert search.tried[:5] == [10, 20, 40, 80, 160]


def test_a_first_stage_that_breaches_halves_the_load_down_to_the_minimum():
    search = search_against(0, 1)
    assert search.good is None and search.tried == [1, 0.5, 0.25, 0.125]


def test_user_stages_are_whole_users():
    search = search_against(13, 2, kind=StageKind.USERS)
    assert all(load == int(load) for load in search.tried)
    assert search.good == 13 or (search.good >= 12 and search.bad == 14)


def test_open_model_users_keep_pace_with_twice_the_latency_bound():
    thresholds = slo.parse_all(list(SLOS))
    assert capacity.open_model_users(100, thresholds, 60) == 60  # 0.6 s per request per user
    assert capacity.open_model_users(100, slo.parse_all(["error_rate < 1%"]), 60) == 100
    assert capacity.open_model_users(0.1, thresholds, 60) == 1


def stage_stats(p95=100.0, rps=50.0, failures=0, saturated=False, shortfall=False, complete=True):
    data = stats(
        entry(requests=1000, failures=failures, rps=rps, latency_ms=latency(p50=p95 / 1.8, p95=p95)),
        saturated=saturated,
        rps_shortfall=shortfall,
        target_rps=rps,
        complete=complete,
        stop_reason="run-time" if complete else "interrupted",
    )
    return data


def test_a_stage_is_judged_with_the_slo_language():
    thresholds = slo.parse_all(list(SLOS))
    assert capacity.judge_stage(StageKind.RPS, 50, stage_stats(), thresholds) == (StageVerdict.WITHIN, ())
    assert capacity.judge_stage(StageKind.RPS, 50, stage_stats(p95=400), thresholds) == (
        StageVerdict.BREACHED,
        ("p95 < 300ms",),
    )
    assert capacity.judge_stage(StageKind.RPS, 50, stage_stats(failures=20), thresholds)[1] == (
        "error_rate < 1%",
    )
    assert capacity.judge_stage(StageKind.RPS, 50, stage_stats(shortfall=True), thresholds)[1] == (
        capacity.SHORTFALL,
    )
    # A closed-model stage has no target rate to fall short of.
    assert capacity.judge_stage(StageKind.USERS, 8, stage_stats(shortfall=True), thresholds)[0] == (
        StageVerdict.WITHIN
    )


def test_a_saturated_generator_or_an_incomplete_stage_is_inconclusive_whatever_the_slos():
    thresholds = slo.parse_all(list(SLOS))
    verdict, why = capacity.judge_stage(StageKind.RPS, 50, stage_stats(saturated=True, p95=900), thresholds)
    assert verdict is StageVerdict.INCONCLUSIVE and why == ("generator",)
    verdict, why = capacity.judge_stage(StageKind.RPS, 50, stage_stats(complete=False), thresholds)
    assert verdict is StageVerdict.INCONCLUSIVE and "interrupted" in why[0]


def result(target, verdict, breached=(), **kwargs):
    return StageResult(StageKind.RPS, target, stage_stats(rps=target * 0.98, **kwargs), verdict, breached)


def section(stages, stopped="found"):
    return capacity.section(
        stages, SLOS, kind=StageKind.RPS, resolution=0.1, stage_time_s=30, warmup_s=6, stopped=stopped
    )


def test_the_section_names_the_most_load_within_the_slos_and_what_stopped_it():
    found = section(
        [
            result(10, StageVerdict.WITHIN),
            result(20, StageVerdict.WITHIN),
            result(40, StageVerdict.BREACHED, ("p95 < 300ms",), p95=500),
            result(30, StageVerdict.BREACHED, ("p95 < 300ms",), p95=350),
            result(25, StageVerdict.WITHIN),
        ]
    )
    # An open-model sweep's users: the requests in flight at that rate (Little's law), not Locust's users.
    in_flight = found["stages"][4]["in_flight"]
    assert in_flight == round(24.5 * found["stages"][4]["latency_ms"]["mean"] / 1000, 2)
    assert found["max_within_slo"] == {"rps": 24.5, "users": in_flight, "stage": 4, "target": 25}
    assert found["limited_by"] == "p95 < 300ms" and found["conclusive"] is True
    assert [stage["verdict"] for stage in found["stages"]] == [
        "within",
        "within",
        "breached",
        "breached",
        "within",
    ]
    assert set(found["stages"][0]) >= {
        "target",
        "achieved_rps",
        "users",
        "latency_ms",
        "error_rate",
        "verdict",
    }
    assert found["summary"] == "the endpoint holds 24.5 rps within the SLOs; the next stage up: p95 < 300ms"


def test_a_sweep_that_never_breaches_says_the_endpoint_held_everything_tried():
    found = section([result(10, StageVerdict.WITHIN), result(20, StageVerdict.WITHIN)], stopped="run-time")
    assert found["limited_by"] is None and found["conclusive"] is False
    assert found["summary"].startswith("the endpoint held everything tried, up to 20 rps")
    assert "at least 19.6 rps" in found["summary"]


def test_a_saturated_generator_is_never_reported_as_the_capacity():
    found = section(
        [
            result(10, StageVerdict.WITHIN),
            result(20, StageVerdict.INCONCLUSIVE, ("generator",), saturated=True),
        ],
        stopped="generator",
    )
    assert found["limited_by"] == "generator" and found["conclusive"] is False
    assert found["max_within_slo"]["target"] == 10  # a lower bound, not the saturated stage
    assert found["summary"].startswith("inconclusive: the load generator saturated")
    data = {**stage_stats(), "capacity": found}
    verdict = judge(data, ["capacity_rps >= 1"])
    assert verdict.status is GateStatus.INCONCLUSIVE
    assert "load generator saturated" in verdict.inconclusive[0]


def test_the_gate_judges_capacity_like_any_metric_and_against_a_baseline():
    found = section([result(50, StageVerdict.WITHIN), result(100, StageVerdict.BREACHED, ("p95 < 300ms",))])
    data = {**stage_stats(), "capacity": found}
    baseline = copy.deepcopy(data)
    baseline["capacity"]["max_within_slo"]["rps"] = 60.0
    verdict = judge(data, ["capacity_rps >= 45", "capacity_users >= 1"])
    assert verdict.status is GateStatus.PASSED, verdict.summary()
    assert verdict.evaluations[0].observed == 49.0
    slower = judge(data, ["capacity_rps >= baseline * 0.9"], baseline)
    assert slower.status is GateStatus.FAILED  # 49 < 54
    assert slower.evaluations[0].bound == pytest.approx(54.0)
    no_sweep = judge(stage_stats(), ["capacity_rps >= 1"])
    assert no_sweep.status is GateStatus.FAILED
    assert "capacity sweep" in (no_sweep.evaluations[0].note or "")


def test_capacity_metrics_take_no_request_name():
    with pytest.raises(BadInput, match="takes no request name"):
        slo.parse('"POST :predict": capacity_rps >= 5')
    with pytest.raises(BadInput, match="plain number"):
        slo.parse("capacity_rps >= 5ms")


def test_the_verdict_sizes_replicas_for_an_expected_peak():
    found = section([result(50, StageVerdict.WITHIN), result(100, StageVerdict.BREACHED, ("p95 < 300ms",))])
    line = sizing_line(found, "n1-standard-4", 500)
    assert line == (
        "one replica of n1-standard-4 holds 49 rps within the SLOs; for a peak of 500 rps set "
        "min_replica_count ≥ ⌈500 / 49⌉ = 11"
    )
    assert sizing_line(found, "n1-standard-4", 0) is None
    assert sizing_line({"max_within_slo": None}, "n1-standard-4", 500) is None
    verdict = judge(
        {**stage_stats(), "capacity": found}, ["p95 < 300ms"], expected_peak_rps=500, machine_type="g2"
    )
    text = markdown(verdict)
    assert "**Sizing:** one replica of g2 holds 49 rps" in text and "**Capacity sweep:**" in text
    with pytest.raises(BadInput, match="expected_peak_rps"):
        judge({**stage_stats(), "capacity": found}, ["p95 < 300ms"], expected_peak_rps=-1)


def test_the_chart_is_inline_svg_with_the_slo_line_and_the_point_of_most_load():
    found = section(
        [
            result(10, StageVerdict.WITHIN),
            result(20, StageVerdict.WITHIN),
            result(40, StageVerdict.BREACHED, ("p95 < 300ms",), p95=900),
        ]
    )
    html = capacity_report.render(found)
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert html.count("<svg") == 1 and "p95 &lt; 300ms</text>" in html
    assert "19.6 rps within the SLOs" in html
    assert len(re.findall(r"<tr", html)) == 1 + 3  # header and one row per stage


def test_nice_ticks_cover_the_range_with_round_steps():
    assert svg_chart.nice_ticks(39.5) == [0, 10, 20, 30, 40]
    assert svg_chart.nice_ticks(41) == [0, 10, 20, 30, 40, 50]
    assert svg_chart.nice_ticks(0.7)[-1] >= 0.7 and svg_chart.nice_ticks(0) == [0.0, 1.0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--slo", "p95 < 1s"], "add --sweep"),
        (["--sweep"], "--sweep needs the SLOs"),
        (["--sweep", "--slo", "p95 < 1"], "has no unit"),
        (["--sweep", "--slo", "p95 < 1s", "--stage-time", "soon"], "stage time 'soon'"),
        (["--sweep", "--slo", "p95 < 1s", "--sweep-resolution", "2"], "sweep resolution 2.0"),
        (["--sweep", "--slo", "p95 < 1s", "--stage-time", "50s", "--run-time", "30s"], "leaves no room"),
    ],
)
def test_sweep_inputs_are_refused_before_any_stage_runs(argv, message, capsys, tmp_path):
    from vertex_loadtest.cli import main

    code = main(["load-test", "--host", "http://127.0.0.1:9", "--output-dir", str(tmp_path), *argv])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "stages").exists()


@pytest.mark.skipif(not Path("/proc/self/schedstat").exists(), reason="Linux schedstat only")
def test_a_process_that_computes_is_runnable_all_the_time_and_a_sleeping_one_is_not():
    busy, idle = RunnableSampler(), RunnableSampler()
    for _ in range(RunnableSampler.WINDOW + 1):
        busy.sample(os.getpid())
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:  # on a CPU or queued for one: runnable either way
            pass
    for _ in range(RunnableSampler.WINDOW + 1):
        idle.sample(os.getpid())
        time.sleep(0.05)
    assert busy.peak >= 80 and idle.peak < 50
