"""Real Locust runs against the local prediction server: accuracy, failures, bad inputs."""

import json
import math
import re
import socket
import time
from pathlib import Path

import pytest

from vertex_loadtest.errors import BadInput
from vertex_loadtest.histogram import readable
from vertex_loadtest.locust_load_test.runner import LoadTest, run_load_test
from vertex_loadtest.rehearsal.prediction_server import Behaviour, PredictionServer
from vertex_loadtest.stats import LATENCY_KEYS, ErrorKind, load_stats

pytestmark = pytest.mark.slow
DATA = Path(__file__).parent.parent / "data"


def html_percentiles(report: Path) -> dict[str, dict[str, float]]:
    """The per-request percentile table embedded in Locust's HTML report."""
    text = report.read_text(encoding="utf-8")
    match = re.search(r'"response_time_statistics":\s*(\[.*?\])', text)
    assert match, "no response_time_statistics in the HTML report"
    return {f"{row['method']} {row['name']}".strip(): row for row in json.loads(match.group(1))}


def nearest_rank(samples: list[float], quantile: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(quantile * len(ordered) - 1e-9)) - 1]


def test_percentiles_match_ground_truth_across_processes(tmp_path, monkeypatch):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    monkeypatch.setenv("RAW_SAMPLES_DIR", str(raw_dir))
    behaviour = Behaviour(latency="choice:3ms,17ms,47ms,143ms,333ms", seed=7)
    with PredictionServer(behaviour) as server:
        outcome = run_load_test(
            LoadTest(
                host=server.url,
                locustfile=str(DATA / "recording_locustfile.py"),
                users=20,
                spawn_rate=50,
                run_time="6s",
                processes=2,
            ),
            tmp_path / "out",
        )
    samples = [float(line) for path in raw_dir.iterdir() for line in path.read_text().split()]
    stats = load_stats(outcome.stats_file)
    latency = stats["requests"]["POST :predict"]["latency_ms"]
    assert stats["run"]["complete"] is True
    assert stats["totals"]["successes"] == len(samples) > 300
    for key, quantile in {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p99.9": 0.999}.items():
        truth = nearest_rank(samples, quantile)
        assert latency[key] == pytest.approx(truth, rel=0.005), key
        assert latency[key] <= truth
    assert latency["max"] == pytest.approx(max(samples))
    assert latency["min"] == pytest.approx(min(samples))
    # The HTML report shows the very same numbers (no failures, so all requests == successful ones),
    # at 3 significant digits; stats.json keeps full precision.
    html = html_percentiles(outcome.report)["POST :predict"]
    all_latency = stats["requests"]["POST :predict"]["all_latency_ms"]
    for html_key, key in (("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")):
        assert all_latency[key] == latency[key]
        assert html[html_key] == readable(latency[key])


def test_a_multi_process_run_needs_no_fixed_port(tmp_path):
    """Locust's master binds 5557 on every interface by default: with it taken (another run on the
    machine), a multi-process run still works, its master on a free loopback port."""
    with socket.socket() as squatter, PredictionServer(Behaviour(latency="2ms")) as server:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            squatter.bind(("0.0.0.0", 5557))
        except OSError:
            pytest.skip("port 5557 is in use by something else on this machine")
        squatter.listen()
        outcome = run_load_test(LoadTest(host=server.url, users=4, run_time="2s", processes=2), tmp_path)
        served = server.counters.by_outcome["ok"]
    stats = load_stats(outcome.stats_file)
    assert stats["run"]["complete"] is True
    assert stats["totals"]["successes"] == served > 0


def test_failures_are_counted_by_kind_and_kept_out_of_success_latency(tmp_path):
    behaviour = Behaviour(latency="5ms", error_rate=0.2, error_status=429, malformed_rate=0.1, seed=3)
    with PredictionServer(behaviour) as server:
        outcome = run_load_test(LoadTest(host=server.url, users=5, run_time="3s", processes=1), tmp_path)
        served = dict(server.counters.by_outcome)
    totals = load_stats(outcome.stats_file)["totals"]
    assert totals["errors"]["throttled"] == served["error"]
    assert totals["errors"]["malformed"] == served["malformed"]
    assert totals["failures"] == served["error"] + served["malformed"]
    assert totals["successes"] == served["ok"]
    assert totals["failure_rate"] == pytest.approx(totals["failures"] / totals["requests"], abs=1e-6)
    assert set(totals["errors"]) == set(ErrorKind)
    assert set(totals["latency_ms"]) == set(LATENCY_KEYS)
    assert totals["failure_latency_ms"]["p50"] is not None


def test_unreachable_host_completes_with_connection_failures(tmp_path):
    from tests.conftest import free_port

    outcome = run_load_test(
        LoadTest(host=f"http://127.0.0.1:{free_port()}", users=2, run_time="2s", processes=1), tmp_path
    )
    totals = outcome.stats["totals"]
    assert outcome.complete
    assert totals["requests"] > 0 and totals["successes"] == 0
    assert totals["errors"]["connection"] == totals["failures"]
    assert totals["latency_ms"]["p95"] is None


def test_connection_resets_are_connection_failures(tmp_path):
    with PredictionServer(Behaviour(latency="1ms", reset_rate=0.3, seed=5)) as server:
        outcome = run_load_test(LoadTest(host=server.url, users=3, run_time="2s", processes=1), tmp_path)
        resets = server.counters.by_outcome.get("reset", 0)
    assert resets > 0
    assert outcome.stats["totals"]["errors"]["connection"] == resets


def test_a_hung_target_never_hangs_the_task(tmp_path):
    with PredictionServer(Behaviour(hang_rate=1.0)) as server:
        outcome = run_load_test(
            LoadTest(
                host=server.url, users=2, run_time="2s", processes=1, request_timeout_s=60, stop_timeout_s=2
            ),
            tmp_path,
        )
    stats = outcome.stats
    assert stats["totals"]["successes"] == 0
    assert stats["run"]["duration_s"] < 2 + 2 + 10


def test_inline_instances_and_jsonl_payloads_reach_the_server(tmp_path):
    seen = []

    def remember(instances):
        seen.extend(instances)
        return instances

    payloads = tmp_path / "payloads.jsonl"
    payloads.write_text('{"instances": [{"text": "a"}], "parameters": {"t": 1}}\n{"text": "b"}\n')
    with PredictionServer(Behaviour(predict=remember)) as server:
        run_load_test(
            LoadTest(host=server.url, payloads=str(payloads), users=1, run_time="1s", processes=1),
            tmp_path / "jsonl",
        )
        assert {"text": "a"} in seen and {"text": "b"} in seen
        seen.clear()
        run_load_test(
            LoadTest(host=server.url, instances='[{"text": "c"}]', users=1, run_time="1s", processes=1),
            tmp_path / "inline",
        )
        assert seen and all(item == {"text": "c"} for item in seen)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"run_time": "ten minutes"}, "run time 'ten minutes' is not a duration"),
        ({"run_time": "0s"}, "must be longer than zero"),
        ({"users": 0}, "users 0 must be at least 1"),
        (
            {"locustfile": "/nonexistent/locustfile.py"},
            "locustfile /nonexistent/locustfile.py does not exist",
        ),
        ({"instances": "[{oops"}, "is not JSON"),
        ({"instances": json.dumps([{"blob": "x" * 1_600_000}])}, "at most 1,500,000 bytes"),
    ],
)
def test_bad_input_names_what_and_how(tmp_path, prediction_server, kwargs, message):
    with pytest.raises(BadInput, match=re.escape(message)):
        run_load_test(LoadTest(host=prediction_server.url, **kwargs), tmp_path)


def test_syntax_error_names_file_and_line(tmp_path, prediction_server):
    broken = tmp_path / "broken.py"
    broken.write_text("from locust import HttpUser\n\nclass U(HttpUser)\n    pass\n")
    with pytest.raises(BadInput, match=r"broken.py has a syntax error at line 3"):
        run_load_test(LoadTest(host=prediction_server.url, locustfile=str(broken)), tmp_path / "out")


def test_locustfile_without_user_class_is_refused(tmp_path, prediction_server):
    empty = tmp_path / "no_users.py"
    empty.write_text("import locust\n\nSETTING = 1\n")
    with pytest.raises(BadInput, match="defines no User class"):
        run_load_test(
            LoadTest(host=prediction_server.url, locustfile=str(empty), run_time="2s", processes=1),
            tmp_path / "out",
        )


def test_checksum_mismatch_refuses_to_run(tmp_path, prediction_server):
    locustfile = tmp_path / "team.py"
    locustfile.write_text((DATA / "recording_locustfile.py").read_text())
    with pytest.raises(BadInput, match=r"has SHA-256 .* not the expected 00ff"):
        run_load_test(
            LoadTest(host=prediction_server.url, locustfile=str(locustfile), locustfile_sha256="00ff"),
            tmp_path / "out",
        )


def test_abort_on_breach_stops_a_doomed_run_early(tmp_path):
    with PredictionServer(Behaviour(latency="40ms")) as server:
        started = time.monotonic()
        outcome = run_load_test(
            LoadTest(
                host=server.url,
                users=4,
                run_time="60s",
                processes=1,
                abort_on_breach=("p95 < 10ms",),
                abort_grace="2s",
            ),
            tmp_path,
        )
    assert time.monotonic() - started < 20, "the run must stop long before its 60 s"
    run = outcome.stats["run"]
    assert run["complete"] is False and run["stop_reason"] == "aborted-on-breach"
    assert "aborted early, SLO breached: p95 &lt; 10ms" in outcome.report.read_text()


def test_abort_on_breach_lets_a_healthy_run_finish(tmp_path, prediction_server):
    outcome = run_load_test(
        LoadTest(
            host=prediction_server.url,
            users=2,
            run_time="4s",
            processes=1,
            abort_on_breach=("p95 < 5s", "error_rate < 50%"),
            abort_grace="1s",
        ),
        tmp_path,
    )
    assert outcome.complete and outcome.stats["run"]["stop_reason"] == "run-time"


def test_bad_abort_expression_is_refused_before_any_load(tmp_path, prediction_server):
    with pytest.raises(BadInput, match="p95 <"):
        run_load_test(LoadTest(host=prediction_server.url, abort_on_breach=("p95 <",)), tmp_path)


def test_a_subclass_runs_only_its_own_tasks(tmp_path, prediction_server):
    sample = Path(__file__).parents[2] / "components/vertex_loadtest/rehearsal/sample_locustfile.py"
    outcome = run_load_test(
        LoadTest(host=prediction_server.url, locustfile=str(sample), users=4, run_time="3s", processes=1),
        tmp_path,
    )
    assert set(outcome.stats["requests"]) == {"POST :predict short", "POST :predict batch"}
