"""A distributed load test on one machine: a Locust master and workers as ``vertex-loadtest load-test``
processes on 127.0.0.1, each given the ``CLUSTER_SPEC`` Vertex AI would set on its replica, so the
production role logic (``vertex_loadtest.locust_load_test.cluster``) runs unchanged. Used by the
distributed tests and benchmarks.
"""

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from vertex_loadtest.locust_load_test.cluster import ENV, MASTER_POOL


def loopback_cluster_specs(port: int, workers: int) -> list[str]:
    """``CLUSTER_SPEC`` values for a master and ``workers`` workers as processes on 127.0.0.1.

    Args:
        port: The master's port.
        workers: How many worker replicas.

    Returns:
        One value per replica: the master's first, then each worker's.
    """
    cluster = {MASTER_POOL: [f"127.0.0.1:{port}"], "workerpool1": [f"127.0.0.1:{port}"] * workers}
    tasks = [(MASTER_POOL, 0)] + [("workerpool1", index) for index in range(workers)]
    return [json.dumps({"cluster": cluster, "task": {"type": pool, "index": index}}) for pool, index in tasks]


def start_loopback_cluster(
    load_test_args: Sequence[str], workers: int, port: int, output_root: Path, **popen: object
) -> list[subprocess.Popen[bytes]]:
    """Starts a master and ``workers`` workers as ``vertex-loadtest load-test`` processes on 127.0.0.1.

    Args:
        load_test_args: The ``load-test`` options every replica gets (host, users, run time, ...).
        workers: How many worker replicas.
        port: The master's port.
        output_root: Replica ``i`` writes under ``output_root / f"replica{i}"`` (only the master's is used).
        **popen: Passed to ``subprocess.Popen`` (``stdout``, ``env`` additions under ``env``, ...).

    Returns:
        The processes, the master's first.
    """
    extra_env = dict(popen.pop("env", None) or {})  # type: ignore[call-overload]
    return [
        subprocess.Popen(  # type: ignore[call-overload]
            [
                sys.executable,
                "-m",
                "vertex_loadtest.cli",
                "load-test",
                *load_test_args,
                "--output-dir",
                str(output_root / f"replica{index}"),
            ],
            env={**os.environ, **extra_env, ENV: spec},
            **popen,
        )
        for index, spec in enumerate(loopback_cluster_specs(port, workers))
    ]
