"""Capacity sweep (issue 14): found versus true capacity against loopback servers of known capacity
(k slots of service time s hold k / s rps), and the sweep's wall time versus stages x stage time.

Each sweep starts at a third of the true capacity with the default resolution (10%) and the SLO
``p95 < 3 * s``; one Locust process, on the same cores as the server.
"""

import os
import tempfile
import time
from pathlib import Path

from vertex_loadtest.locust_load_test.runner import LoadTest
from vertex_loadtest.locust_load_test.sweep import Sweep, run_sweep
from vertex_loadtest.rehearsal.prediction_server import Behaviour, PredictionServer

SERVERS = ((4, 0.100), (3, 0.050), (8, 0.050))  # (slots, service time in s): 40, 60, 160 rps
STAGE_TIME_S = 5


def sweep_once(slots: int, service_s: float, work: Path) -> dict:
    capacity = slots / service_s
    behaviour = Behaviour(latency=f"{service_s * 1000:g}ms", slots=slots)
    with PredictionServer(behaviour) as server:
        test = LoadTest(host=server.url, target_rps=round(capacity / 3, 1), run_time="5m", processes=1)
        plan = Sweep((f"p95 < {3 * service_s * 1000:g}ms",), stage_time=f"{STAGE_TIME_S}s")
        began = time.monotonic()
        outcome = run_sweep(test, plan, work / f"{slots}x{service_s}")
        wall_s = time.monotonic() - began
    found = outcome.stats["capacity"]
    best = found["max_within_slo"] or {"rps": 0.0}
    stage_s = found["warmup_s"] + found["stage_time_s"]
    return {
        "server": f"{slots} slots x {service_s * 1000:g} ms",
        "true": capacity,
        "found": best["rps"],
        "error": (best["rps"] - capacity) / capacity,
        "limited_by": found["limited_by"] or "nothing",
        "stages": len(found["stages"]),
        "planned_s": len(found["stages"]) * stage_s,
        "wall_s": wall_s,
        "warmup_s": found["warmup_s"],
    }


def run(results_dir: Path) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        rows = [sweep_once(slots, service_s, Path(tmp)) for slots, service_s in SERVERS]
    lines = [
        f"Capacity sweep on loopback, {os.cpu_count()} cores shared by the server and one Locust process; "
        f"stage time {STAGE_TIME_S} s plus a warm-up of {'/'.join(str(r['warmup_s']) for r in rows)} s, "
        "resolution 10%, SLO p95 < 3 x service time.",
        "",
        "| server | true capacity (rps) | found max within SLO (rps) | error | limited by | stages "
        "| stages x (warm-up + stage time) | sweep wall time | overhead per stage |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        overhead = (row["wall_s"] - row["planned_s"]) / row["stages"]
        lines.append(
            f"| {row['server']} | {row['true']:g} | {row['found']:.1f} | {row['error']:+.1%} "
            f"| `{row['limited_by']}` | {row['stages']} | {row['planned_s']} s | {row['wall_s']:.1f} s "
            f"| {overhead:.1f} s |"
        )
    within = all(abs(row["error"]) <= 0.10 for row in rows)
    lines += ["", f"Every found capacity within 10% of the truth: {'yes' if within else 'NO'}."]
    return "\n".join(lines)
