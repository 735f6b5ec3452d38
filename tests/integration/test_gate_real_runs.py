"""The gate on stats written by real Locust runs (``run_load_test`` against the local prediction server).

Each run is a few seconds of real Locust; the gate is judged through ``vertex-loadtest gate``.
"""

import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from vertex_loadtest.cli import main
from vertex_loadtest.locust_load_test.runner import LoadTest, run_load_test
from vertex_loadtest.rehearsal.prediction_server import Behaviour, PredictionServer
from vertex_loadtest.slo import format_value
from vertex_loadtest.stats import load_stats

pytestmark = pytest.mark.slow

IDLE_LOCUSTFILE = '''
from locust import User, constant, task


class Idle(User):
    """Runs for the whole test and never sends a request."""

    wait_time = constant(0.5)

    @task
    def nothing(self):
        pass
'''


def gate(capsys, stats: Path, *args: str) -> tuple[int, str, str]:
    code = main(["gate", "--stats", str(stats), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def exact(value: float) -> str:
    """The float as written in stats.json, so the SLO's bound is exactly the observed value."""
    return str(Decimal(repr(value)))


def test_the_same_run_passes_one_gate_and_fails_another(tmp_path, prediction_server, capsys):
    outcome = run_load_test(
        LoadTest(host=prediction_server.url, users=4, run_time="3s", processes=1), tmp_path / "run"
    )
    stats = load_stats(outcome.stats_file)
    totals = stats["totals"]
    assert stats["run"]["complete"] and totals["successes"] >= 100 and not stats["generator"]["saturated"]
    p95 = totals["latency_ms"]["p95"]
    p95_predict = stats["requests"]["POST :predict"]["latency_ms"]["p95"]

    code, out, _ = gate(
        capsys, outcome.stats_file,
        "--slo", "p95 < 500ms", "--slo", "error_rate < 1%", "--slo", "failures == 0",
        "--slo", "requests >= 100", "--slo", "rps >= 10", "--slo", f"p95 <= {exact(p95)}ms",
        "--slo", f'"POST :predict": p95 <= {exact(p95_predict)}ms',
    )  # fmt: skip
    assert code == 0, out
    assert "✅ PASSED" in out and "7 of 7 SLOs hold" in out

    # The same numbers, judged by stricter SLOs: the server sleeps 2 ms, so nothing is under 1 ms.
    strict = ["--slo", "p95 < 500ms", "--slo", "p50 < 1ms", "--slo", f"p95 < {exact(p95)}ms"]
    code, out, _ = gate(capsys, outcome.stats_file, *strict)
    assert code == 1
    assert "❌ FAILED" in out and "1 of 3 SLOs hold" in out
    assert f"p95 < {exact(p95)}ms` |" in out and "(at the threshold) | ❌ fail |" in out


def test_a_run_where_every_request_fails_never_passes(tmp_path, capsys):
    with PredictionServer(Behaviour(latency="1ms", error_rate=1.0, error_status=503)) as server:
        outcome = run_load_test(
            LoadTest(host=server.url, users=2, run_time="2s", processes=1), tmp_path / "run"
        )
    totals = outcome.stats["totals"]
    assert totals["requests"] > 0 and totals["successes"] == 0 and totals["failure_rate"] == 1.0
    code, out, _ = gate(
        capsys, outcome.stats_file, "--slo", "p95 < 10s", "--slo", "error_rate <= 100%",
        "--allow-incomplete", "--allow-inconclusive", "--min-requests", "0",
    )  # fmt: skip
    assert code == 1
    assert f"none of the {totals['requests']} requests succeeded (errors: {totals['requests']} server)" in out
    assert "| 1 | `p95 < 10s` | n/a | < 10 s | n/a | ❌ fail: no successful requests" in out


def test_a_run_that_made_no_requests_never_passes(tmp_path, prediction_server, capsys):
    locustfile = tmp_path / "idle.py"
    locustfile.write_text(IDLE_LOCUSTFILE)
    outcome = run_load_test(
        LoadTest(host=prediction_server.url, locustfile=str(locustfile), users=2, run_time="2s", processes=1),
        tmp_path / "run",
    )
    assert outcome.stats["totals"]["requests"] == 0 and outcome.stats["requests"] == {}
    code, out, _ = gate(capsys, outcome.stats_file, "--slo", "failures == 0", "--allow-inconclusive")
    assert code == 1
    assert "made no requests" in out
    code, _, err = gate(capsys, outcome.stats_file, "--slo", '"POST :predict": p95 < 1s')
    assert code == 2 and "request names there: none (the run made no requests)" in err


def test_an_interrupted_run_fails_unless_incomplete_runs_are_allowed(tmp_path, prediction_server, capsys):
    output = tmp_path / "run"
    command = [
        sys.executable, "-m", "vertex_loadtest.cli", "load-test", "--host", prediction_server.url,
        "--users", "3", "--run-time", "60s", "--processes", "1", "--output-dir", str(output),
    ]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while prediction_server.counters.requests < 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        child.send_signal(signal.SIGTERM)  # what Vertex sends on cancel
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    stats = load_stats(output)
    assert stats["run"]["complete"] is False and stats["run"]["stop_reason"] == "interrupted"
    assert stats["totals"]["successes"] >= 100

    code, out, _ = gate(capsys, output / "stats.json", "--slo", "p95 < 1s", "--slo", "error_rate < 1%")
    assert code == 1
    assert "the run did not complete (stop reason: interrupted)" in out
    code, out, _ = gate(
        capsys, output / "stats.json", "--slo", "p95 < 1s", "--slo", "error_rate < 1%", "--allow-incomplete"
    )
    assert code == 0
    assert "judged anyway because allow_incomplete is set" in out


def test_a_regression_against_the_last_release_run_fails_the_baseline_gate(tmp_path, capsys):
    runs = {}
    for name, latency in (("v1", "5ms"), ("v2", "40ms")):
        with PredictionServer(Behaviour(latency=latency)) as server:
            runs[name] = run_load_test(
                LoadTest(host=server.url, users=4, run_time="2s", processes=1), tmp_path / name
            ).stats_file
    slos = ["--slo", "p95 < baseline * 1.5", "--slo", "rps >= baseline * 0.5", "--min-requests", "50"]
    assert gate(capsys, runs["v1"], "--baseline", str(runs["v1"]), *slos)[0] == 0
    code, out, _ = gate(capsys, runs["v2"], "--baseline", str(runs["v1"]), *slos)
    assert code == 1
    assert "0 of 2 SLOs hold" in out
    baseline_p95 = load_stats(runs["v1"])["totals"]["latency_ms"]["p95"]
    assert f"(baseline {format_value('p95', baseline_p95)})" in out
