"""``vertex-loadtest gate``: exit codes (0 pass, 1 breach/inconclusive, 2 bad input) and messages."""

import json
import subprocess
import sys

import pytest

from tests import gate_stats
from tests.gate_stats import entry, latency, stats
from vertex_loadtest.cli import main


@pytest.fixture
def healthy(tmp_path):
    """A healthy run's stats.json: p95 180 ms, no errors, 100 rps, 1000 requests."""
    return gate_stats.write(tmp_path / "healthy", stats())


def gate(capsys, *args):
    code = main(["gate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_pass_exits_0_and_prints_the_verdict(capsys, healthy, tmp_path):
    code, out, _ = gate(
        capsys, "--stats", str(healthy), "--slo", "p95 < 200ms", "--slo", "error_rate < 1%",
        "--verdict", str(tmp_path / "verdict.md"),
    )  # fmt: skip
    assert code == 0
    assert out.startswith("## Latency gate: ✅ PASSED")
    assert "| 1 | `p95 < 200ms` | 180 ms | < 200 ms | +20 ms (+10.0%) | ✅ pass |" in out
    assert (tmp_path / "verdict.md").read_text() == out


def test_the_stats_directory_works_as_well_as_the_file(capsys, healthy):
    assert gate(capsys, "--stats", str(healthy.parent), "--slo", "p95 < 200ms")[0] == 0


def test_breach_exits_1_naming_the_expression(capsys, caplog, healthy):
    code, out, _ = gate(capsys, "--stats", str(healthy), "--slo", "p95 < 150ms", "--slo", "rps >= 50")
    assert code == 1
    assert out.startswith("## Latency gate: ❌ FAILED")
    assert "| 1 | `p95 < 150ms` | 180 ms | < 150 ms | -30 ms (-20.0%) | ❌ fail |" in out
    assert "1 of 2 SLOs breached: 'p95 < 150ms' BREACHED: observed 180 ms, threshold < 150 ms" in caplog.text


def test_exactly_at_the_threshold(capsys, healthy):
    assert gate(capsys, "--stats", str(healthy), "--slo", "p95 <= 180ms")[0] == 0
    assert gate(capsys, "--stats", str(healthy), "--slo", "p95 < 180ms")[0] == 1
    assert gate(capsys, "--stats", str(healthy), "--slo", "p95 < 0.18s")[0] == 1


@pytest.mark.parametrize(
    ("kwargs", "flag", "reason"),
    [
        ({"saturated": True, "cpu_peak_percent": 97.0}, "--allow-inconclusive", "measured its own queueing"),
        ({"target_rps": 300.0, "achieved_rps": 100.0, "rps_shortfall": True}, "--allow-inconclusive",
         "coordinated omission"),
        ({"complete": False, "stop_reason": "interrupted"}, "--allow-incomplete", "did not complete"),
    ],
)  # fmt: skip
def test_inconclusive_and_incomplete_runs_exit_1_unless_allowed(capsys, tmp_path, kwargs, flag, reason):
    path = gate_stats.write(tmp_path, stats(**kwargs))
    code, out, _ = gate(capsys, "--stats", str(path), "--slo", "p95 < 200ms")
    assert code == 1
    assert reason in out
    assert gate(capsys, "--stats", str(path), "--slo", "p95 < 200ms", flag)[0] == 0


def test_too_few_requests_with_min_requests(capsys, tmp_path):
    path = gate_stats.write(tmp_path, stats(entry(requests=40)))
    code, out, _ = gate(capsys, "--stats", str(path), "--slo", "error_rate < 1%")
    assert code == 1 and "INCONCLUSIVE" in out and "only 40 requests" in out
    assert gate(capsys, "--stats", str(path), "--slo", "error_rate < 1%", "--min-requests", "40")[0] == 0


@pytest.mark.parametrize("flags", [[], ["--allow-incomplete", "--allow-inconclusive", "--min-requests", "0"]])
def test_zero_successes_and_zero_requests_always_exit_1(capsys, tmp_path, flags):
    all_errors = gate_stats.write(tmp_path / "errors", stats(entry(requests=300, failures=300)))
    nothing = gate_stats.write(tmp_path / "nothing", stats(entry(requests=0)))
    code, out, _ = gate(capsys, "--stats", str(all_errors), "--slo", "error_rate <= 100%", *flags)
    assert code == 1 and "none of the 300 requests succeeded" in out
    code, out, _ = gate(capsys, "--stats", str(nothing), "--slo", "requests >= 0", *flags)
    assert code == 1 and "made no requests" in out


def test_baseline_regression(capsys, tmp_path):
    baseline = gate_stats.write(tmp_path / "v1", stats(entry(latency_ms=latency(p95=200.0))))
    current = gate_stats.write(tmp_path / "v2", stats(entry(latency_ms=latency(p95=230.0))))
    args = ["--stats", str(current), "--baseline", str(baseline)]
    assert gate(capsys, *args, "--slo", "p95 < baseline * 1.2")[0] == 0
    code, out, _ = gate(capsys, *args, "--slo", "p95 < baseline * 1.1")
    assert code == 1 and "< 220 ms (baseline 200 ms)" in out


# --- bad input: exit 2, the message names the input and the fix ---------------------------------


@pytest.mark.parametrize(
    ("slo", "message"),
    [
        ("p95 200ms", "SLO expression 'p95 200ms': no comparison operator"),
        (
            "p95 < 200",
            "SLO expression 'p95 < 200': the bound '200' of a latency has no unit: write '200ms' or '200s'",
        ),
        ("p95 = 200ms", "operator '=' is not supported: write '=='"),
        ("p95 < 200 parsecs", "unknown unit 'parsecs' for p95: use 'ms' or 's'"),
        ("p95 < fast", "the bound 'fast' is not a number with its unit"),
        ("latency < 200ms", "SLO expression 'latency < 200ms': unknown metric 'latency'"),
        ("p95th < 200ms", "unknown metric 'p95th' (did you mean 'p95'?)"),
        ("error_rate < 5", "write '5%' or '0.05'"),
        ("rps >= 50ms", "rps is requests per second and takes a plain number"),
        ('"POST :predict: p95 < 300ms', "is not closed"),
        ('"POST /predict": p95 < 300ms', "SLO request name 'POST /predict' is not in the stats"),
        ("p95 < baseline * 1.1", "compares with 'baseline' but no baseline stats are given"),
    ],
)
def test_bad_expressions_exit_2_naming_the_expression_and_the_fix(capsys, healthy, slo, message):
    code, out, err = gate(capsys, "--stats", str(healthy), "--slo", "error_rate < 1%", "--slo", slo)
    assert code == 2
    assert out == ""
    assert "vertex-loadtest gate: error: " in err
    assert message in err


def test_unknown_request_name_lists_the_known_ones(capsys, healthy):
    code, _, err = gate(capsys, "--stats", str(healthy), "--slo", '"POST :predic": p95 < 1s')
    assert code == 2
    assert "(did you mean 'POST :predict'?); request names there: 'POST :predict'" in err


def test_bad_files_exit_2(capsys, tmp_path, healthy):
    missing = tmp_path / "nowhere" / "stats.json"
    code, _, err = gate(capsys, "--stats", str(missing), "--slo", "p95 < 1s")
    assert code == 2 and f"stats file {missing} does not exist" in err
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    code, _, err = gate(capsys, "--stats", str(garbage), "--slo", "p95 < 1s")
    assert code == 2 and "is not readable JSON" in err
    future = tmp_path / "future.json"
    future.write_text(json.dumps({**stats(), "schema_version": 99}))
    code, _, err = gate(capsys, "--stats", str(future), "--slo", "p95 < 1s")
    assert code == 2 and "schema_version 99" in err
    code, _, err = gate(
        capsys, "--stats", str(healthy), "--baseline", str(missing), "--slo", "p95 < baseline"
    )
    assert code == 2 and "does not exist" in err


def test_bad_min_requests_exits_2(capsys, healthy):
    code, _, err = gate(capsys, "--stats", str(healthy), "--slo", "p95 < 1s", "--min-requests", "-5")
    assert code == 2 and "min_requests=-5" in err


@pytest.mark.parametrize("args", [["--slo", "p95 < 1s"], ["--stats", "stats.json"], ["--stats"]])
def test_missing_arguments_exit_2(capsys, args):
    with pytest.raises(SystemExit) as raised:
        main(["gate", *args])
    assert raised.value.code == 2
    assert "vertex-loadtest gate: error:" in capsys.readouterr().err


@pytest.mark.slow
def test_the_installed_command_exit_codes_and_no_locust_import(tmp_path):
    """The real entry point, in a fresh interpreter: exit codes, and the gate never imports locust."""
    path = gate_stats.write(tmp_path, stats())
    probe = (
        "import sys\n"
        "from vertex_loadtest.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "heavy = sorted(m for m in ('locust', 'gevent', 'google.cloud.aiplatform') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "sys.exit(code)\n"
    )
    for slo, expected in [("p95 < 200ms", 0), ("p95 < 100ms", 1), ("p95 < 100", 2)]:
        done = subprocess.run(
            [sys.executable, "-c", probe, "gate", "--stats", str(path), "--slo", slo],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == expected, done.stderr
    entry_point = subprocess.run(
        [sys.executable, "-m", "vertex_loadtest.cli", "gate", "--stats", str(path), "--slo", "rps >= 50"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert entry_point.returncode == 0, entry_point.stderr
    assert "✅ PASSED" in entry_point.stdout
