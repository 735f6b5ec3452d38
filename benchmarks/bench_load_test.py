"""The load-test component, measured side by side in one run (issue: Locust load-test component).

1. rps of the built-in user (default settings) / rps of the shared seed-style locustfile run by the
   plain ``locust`` CLI, against the same nginx target: target >= 6x.
2. our rps / wrk's rps on that target (the ceiling): target >= 0.15.
3. percentile error against ground truth (every raw response time recorded), ours vs Locust's
   native numbers, against the prediction server with known delays.
4. component wall time minus run time for a 10 s test, run by ``kfp.local``: target <= 3 s.

Needs nginx and wrk (Debian packages ``nginx-light`` and ``wrk``; ``make bench`` installs them).
"""

import csv
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vertex_loadtest.ports import free_port

REPO = Path(__file__).resolve().parent.parent
SEED_LOCUSTFILE = REPO.parent / "shared" / "baselines" / "seed_style_locustfile.py"
RECORDING_LOCUSTFILE = REPO / "tests" / "data" / "recording_locustfile.py"
RUN_TIME_S = 10
USERS = 10  # the component's default
BODY = '{"instances": [{"text": "Write a dialog using Shakespeare language."}]}'
VERTEX_BODY = '{"predictions": [[0.42]], "deployedModelId": "1"}'
# Delays chosen where Locust's two-digit buckets round hardest (3.4 -> 3, 147 -> 150, 1432 -> 1400).
KNOWN_DELAYS = "choice:" + ",".join(["3.4ms"] * 9 + ["14.6ms"] * 7 + ["147ms"] * 3 + ["1432ms"])
QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


class Nginx:
    """nginx on loopback answering every request with a Vertex-shaped prediction."""

    def __init__(self, work: Path):
        self.work, self.port = work, free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Nginx":
        if not shutil.which("nginx"):
            raise SystemExit("nginx is not installed: apt-get install nginx-light (make bench does)")
        temp = self.work / "nginx"
        temp.mkdir()
        conf = temp / "nginx.conf"
        conf.write_text(f"""
worker_processes 1;
daemon off;
pid {temp}/nginx.pid;
error_log {temp}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy; fastcgi_temp_path {temp}/fcgi;
  uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{self.port};
    location / {{ default_type application/json; return 200 '{VERTEX_BODY}'; }}
  }}
}}
""")
        self.process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(temp)])
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(10)


def _aggregated_row(csv_prefix: Path) -> dict[str, str]:
    with open(f"{csv_prefix}_stats.csv", newline="") as handle:
        return next(row for row in csv.DictReader(handle) if row["Name"] == "Aggregated")


def ours_rps(url: str, work: Path) -> float:
    from vertex_loadtest.locust_load_test.runner import LoadTest, run_load_test

    outcome = run_load_test(LoadTest(host=url, users=USERS, run_time=f"{RUN_TIME_S}s"), work / "ours")
    return float(outcome.stats["totals"]["rps"])


def seed_rps(url: str, work: Path) -> float:
    env = {
        **os.environ,
        "VERTEX_AI_ENDPOINT_HOST": url,
        "VERTEX_AI_ENDPOINT_PATH": "/predict",
        "BASELINE_NO_AUTH": "1",
    }
    prefix = work / "seed"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(SEED_LOCUSTFILE),
            "--headless",
            "--only-summary",
            "-u",
            str(USERS),
            "-r",
            str(USERS),
            "-t",
            f"{RUN_TIME_S}s",
            "--csv",
            str(prefix),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    return float(_aggregated_row(prefix)["Requests/s"])


def wrk_rps(url: str, work: Path) -> float:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does)")
    script = work / "post.lua"
    script.write_text(
        f"wrk.method = 'POST'\nwrk.body = '{BODY}'\nwrk.headers['Content-Type'] = 'application/json'\n"
    )
    result = subprocess.run(
        ["wrk", "-t1", f"-c{USERS}", f"-d{RUN_TIME_S}s", "-s", str(script), f"{url}/predict"],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1))  # type: ignore[union-attr]


def _nearest_rank(samples: list[float], quantile: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(quantile * len(ordered) - 1e-9)) - 1]


def _truth(raw_dir: Path) -> list[float]:
    return [float(line) for path in raw_dir.glob("samples-*.txt") for line in path.read_text().split()]


def percentile_errors(work: Path) -> dict[str, dict[str, float]]:
    """Max relative error of p50/p90/p95/p99 against the exact values, for Locust alone and for us."""
    from vertex_loadtest.locust_load_test.runner import LoadTest, run_load_test
    from vertex_loadtest.rehearsal.prediction_server import Behaviour, PredictionServer

    errors = {}
    with PredictionServer(Behaviour(latency=KNOWN_DELAYS, seed=1)) as server:
        for who in ("locust", "ours"):
            raw = work / f"raw-{who}"
            raw.mkdir()
            os.environ["RAW_SAMPLES_DIR"] = str(raw)
            if who == "locust":
                prefix, config = work / "native", work / "native-config.json"
                # The built-in user without our plugin: only its target settings, no token on loopback.
                config.write_text('{"anonymous": true, "predict_path": "/predict"}')
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "locust",
                        "-f",
                        str(RECORDING_LOCUSTFILE),
                        "--headless",
                        "--only-summary",
                        "-u",
                        "20",
                        "-r",
                        "20",
                        "-t",
                        f"{RUN_TIME_S}s",
                        "--csv",
                        str(prefix),
                        "--exit-code-on-error",
                        "0",
                        "--host",
                        server.url,
                    ],
                    env={**os.environ, "VERTEX_LOADTEST_RUN_CONFIG": str(config)},
                    check=True,
                    capture_output=True,
                )
                row = _aggregated_row(prefix)
                reported = {key: float(row[f"{int(q * 100)}%"]) for key, q in QUANTILES.items()}
            else:
                outcome = run_load_test(
                    LoadTest(
                        host=server.url,
                        locustfile=str(RECORDING_LOCUSTFILE),
                        users=20,
                        spawn_rate=20,
                        run_time=f"{RUN_TIME_S}s",
                        processes=1,
                    ),
                    work / "ours-accuracy",
                )
                reported = {key: outcome.stats["totals"]["latency_ms"][key] for key in QUANTILES}
            samples = _truth(raw)
            errors[who] = {
                key: abs(reported[key] / _nearest_rank(samples, q) - 1) for key, q in QUANTILES.items()
            }
            errors[who]["samples"] = len(samples)
    del os.environ["RAW_SAMPLES_DIR"]
    return errors


def component_overhead(url: str) -> float:
    """Wall time of LocustLoadTestOp under kfp.local minus its run time, for a 10 s test."""
    from kfp import local

    from vertex_loadtest import LocustLoadTestOp

    with tempfile.TemporaryDirectory() as root:
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=root)
        started = time.perf_counter()
        LocustLoadTestOp(host=url, run_time=f"{RUN_TIME_S}s")
        return time.perf_counter() - started - RUN_TIME_S


def run(results_dir: Path) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with Nginx(work) as nginx:
            ours, seed, wrk = ours_rps(nginx.url, work), seed_rps(nginx.url, work), wrk_rps(nginx.url, work)
            overhead = component_overhead(nginx.url)
        errors = percentile_errors(work)
    worst_ours, worst_locust = (
        max(errors["ours"][k] for k in QUANTILES),
        max(errors["locust"][k] for k in QUANTILES),
    )
    rows = [
        (
            "built-in user rps / seed-style locustfile rps",
            f"{ours:,.0f} / {seed:,.0f} = {ours / seed:.2f}x",
            ">= 6x",
            ours / seed >= 6,
        ),
        (
            "built-in user rps / wrk rps (ceiling)",
            f"{ours:,.0f} / {wrk:,.0f} = {ours / wrk:.2f}",
            ">= 0.15",
            ours / wrk >= 0.15,
        ),
        (
            "worst percentile error vs truth, ours (p50..p99)",
            f"{100 * worst_ours:.3f}%",
            "<= 0.5%",
            worst_ours <= 0.005,
        ),
        ("worst percentile error vs truth, Locust native", f"{100 * worst_locust:.2f}%", "(reference)", True),
        (
            "component wall time - run time (10 s test, kfp.local)",
            f"{overhead:.2f} s",
            "<= 3 s",
            overhead <= 3,
        ),
    ]
    detail = ", ".join(
        f"{key} ours {100 * errors['ours'][key]:.3f}% / Locust {100 * errors['locust'][key]:.2f}%"
        for key in QUANTILES
    )
    lines = [
        f"Load test, {RUN_TIME_S} s per measurement, {USERS} users, {os.cpu_count()} cores, "
        "nginx (1 worker) on loopback.",
        "",
        "| measure | value | target | met |",
        "| --- | --- | --- | --- |",
        *(f"| {name} | {value} | {target} | {'yes' if met else 'NO'} |" for name, value, target, met in rows),
        "",
        f"Per percentile (samples: ours {errors['ours']['samples']:.0f}, "
        f"Locust {errors['locust']['samples']:.0f}):",
        f"{detail}.",
    ]
    return "\n".join(lines)
