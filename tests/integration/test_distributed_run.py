"""A real distributed run on loopback: one Locust master and two workers as separate processes, each
told its part by a CLUSTER_SPEC pointing at 127.0.0.1, as Vertex AI CustomJob replicas are."""

import math
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import free_port
from vertex_loadtest.rehearsal.loopback_cluster import start_loopback_cluster
from vertex_loadtest.rehearsal.prediction_server import Behaviour, PredictionServer
from vertex_loadtest.stats import load_stats

pytestmark = pytest.mark.slow
RECORDING_LOCUSTFILE = Path(__file__).parent.parent / "data" / "recording_locustfile.py"


def start_replicas(url: str, tmp_path: Path, raw: Path, run_time: str) -> list[subprocess.Popen]:
    """A master and two workers, each a `vertex-loadtest load-test` process with its own CLUSTER_SPEC."""
    args = [
        "--host",
        url,
        "--users",
        "6",
        "--spawn-rate",
        "20",
        "--run-time",
        run_time,
        "--processes",
        "1",
        "--locustfile",
        str(RECORDING_LOCUSTFILE),
    ]
    return start_loopback_cluster(
        args,
        workers=2,
        port=free_port(),
        output_root=tmp_path,
        env={"RAW_SAMPLES_DIR": str(raw)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def nearest_rank(samples, quantile):
    ordered = sorted(samples)
    return ordered[math.ceil(quantile * len(ordered) - 1e-9) - 1]


def test_master_merges_two_workers_exactly(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    with PredictionServer(Behaviour(latency="choice:2ms,9ms,31ms", seed=2)) as server:
        master, *workers = start_replicas(server.url, tmp_path, raw, "5s")
        outputs = [process.communicate(timeout=90)[0] for process in (master, *workers)]
        served = server.counters.requests
    assert [p.returncode for p in (master, *workers)] == [0, 0, 0], outputs[0][-2000:]
    counts = {path.name: len(path.read_text().split()) for path in raw.iterdir()}
    per_process = {name: count for name, count in counts.items() if count}  # the master sends nothing
    assert len(per_process) == 2, "both workers generated load"
    stats = load_stats(tmp_path / "replica0")
    assert stats["run"]["complete"] is True and stats["run"]["lost_workers"] == []
    assert stats["totals"]["successes"] == sum(per_process.values()) == served
    samples = [float(v) for path in raw.iterdir() for v in path.read_text().split()]
    for key, quantile in {"p50": 0.5, "p95": 0.95, "p99": 0.99}.items():
        assert stats["totals"]["latency_ms"][key] == pytest.approx(nearest_rank(samples, quantile), rel=0.005)
    # The master runs no users and no lag probe: these samples came from the workers' reports.
    assert stats["generator"]["loop_lag_ms"]["p50"] is not None
    assert not (tmp_path / "replica1" / "stats.json").exists(), "only the master writes outputs"


def test_a_worker_killed_mid_test_marks_the_run_incomplete(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    with PredictionServer(Behaviour(latency="2ms")) as server:
        master, *workers = start_replicas(server.url, tmp_path, raw, "14s")
        time.sleep(6)
        lost = psutil.Process(workers[1].pid)  # the replica dies whole, as a preempted VM would
        for process in [lost, *lost.children(recursive=True)]:
            process.kill()
        master_output = master.communicate(timeout=90)[0]
        workers[0].communicate(timeout=30)
        workers[1].communicate(timeout=10)
    assert master.returncode == 1, master_output[-2000:]
    stats = load_stats(tmp_path / "replica0")
    assert stats["run"]["complete"] is False and stats["run"]["stop_reason"] == "worker-lost"
    assert len(stats["run"]["lost_workers"]) == 1
    assert "worker(s) lost mid-test" in (tmp_path / "replica0" / "report.html").read_text()


def test_a_master_whose_workers_never_come_names_them(tmp_path, prediction_server, monkeypatch):
    from vertex_loadtest.locust_load_test.cluster import Role
    from vertex_loadtest.locust_load_test.runner import LoadTest, run_load_test

    role = Role(
        "master", "127.0.0.1", free_port(), ("workerpool1-0:2222", "workerpool1-1:2222"), "workerpool0[0]"
    )
    started = time.monotonic()
    with pytest.raises(
        RuntimeError, match=r"gave up waiting for its workers .*workerpool1-0:2222, workerpool1-1"
    ):
        run_load_test(
            LoadTest(host=prediction_server.url, run_time="5s", processes=1, expect_workers_max_wait_s=2),
            tmp_path,
            role=role,
        )
    assert time.monotonic() - started < 20
