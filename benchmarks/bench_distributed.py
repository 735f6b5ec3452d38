"""Distributed load tests on loopback (issue: Locust master/worker as a Vertex AI CustomJob).

Master + 2 workers / master + 1 worker, rps against nginx, each replica a separate process told its
part by CLUSTER_SPEC, one Locust process per worker (target >= 1.6x on 2 cores). Also records the
rps one worker process drives, the number the docs use to size runs.
"""

import os
import subprocess
import tempfile
from pathlib import Path

from benchmarks.bench_load_test import Nginx
from vertex_loadtest.ports import free_port
from vertex_loadtest.rehearsal.loopback_cluster import start_loopback_cluster
from vertex_loadtest.stats import load_stats

RUN_TIME_S = 10
USERS = 20


def distributed_rps(url: str, workers: int, work: Path) -> float:
    args = [
        "--host",
        url,
        "--users",
        str(USERS),
        "--spawn-rate",
        str(USERS),
        "--run-time",
        f"{RUN_TIME_S}s",
        "--processes",
        "1",
    ]
    replicas = start_loopback_cluster(
        args,
        workers,
        free_port(),
        work / f"{workers}-workers",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for replica in replicas:
        replica.wait(RUN_TIME_S + 120)
    return float(load_stats(work / f"{workers}-workers" / "replica0")["totals"]["rps"])


def run(results_dir: Path) -> str:
    with tempfile.TemporaryDirectory() as tmp, Nginx(Path(tmp)) as nginx:
        one = distributed_rps(nginx.url, 1, Path(tmp))
        two = distributed_rps(nginx.url, 2, Path(tmp))
    return "\n".join(
        [
            f"Distributed Locust on loopback: {USERS} users, {RUN_TIME_S} s, {os.cpu_count()} cores shared "
            "by nginx (1 worker), the master and the workers.",
            "",
            "| measure | value | target | met |",
            "| --- | --- | --- | --- |",
            f"| master + 2 workers rps / master + 1 worker rps | {two:,.0f} / {one:,.0f} = {two / one:.2f}x "
            f"| >= 1.6x | {'yes' if two / one >= 1.6 else 'NO'} |",
            f"| rps one worker process (one core) drives | {one:,.0f} | (sizing input) | - |",
        ]
    )
