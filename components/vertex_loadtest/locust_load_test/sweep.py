"""The capacity sweep: the most load an endpoint holds within its SLOs (``docs/capacity-sweep.md``).

Runs in the component's own process (no locust import here) and runs each stage as one ordinary load
test through ``runner.run_load_test``: a fresh Locust run per stage gives each stage its own
histograms by construction (nothing of one stage leaks into the next), and the stage is judged with
the gate's SLO language (``vertex_loadtest.slo``) on that stage's own ``stats.json``. The search and
the verdicts are ``capacity``'s; the picture is ``capacity_report``'s.

Outputs, in the output directory: ``stats.json`` (the stage of most load within the SLOs, or the last
stage, plus the ``capacity`` section), ``report.html`` (the hockey-stick chart and the stages table,
then that stage's Locust report), and ``stages/NN-KIND-LOAD/`` with every stage's own reports.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vertex_loadtest import slo
from vertex_loadtest.durations import parse_duration
from vertex_loadtest.errors import BadInput
from vertex_loadtest.locust_load_test import capacity, capacity_report, cluster, target
from vertex_loadtest.locust_load_test.run_config import DEFAULT_SWEEP_RESOLUTION, DEFAULT_SWEEP_STAGE_TIME
from vertex_loadtest.locust_load_test.runner import REPORT_FILE, LoadTest, Outcome, run_load_test
from vertex_loadtest.stats import write_stats

logger = logging.getLogger(__name__)

#: Locust's start and stop around each stage, until the first stage has measured it.
STAGE_OVERHEAD_GUESS_S = 5.0
STAGES_DIR = "stages"


@dataclass(frozen=True)
class Sweep:
    """How to sweep.

    Attributes:
        slos: SLO expressions (gate syntax) every stage must hold.
        stage_time: How long each stage is measured, after its warm-up.
        resolution: Bisect until the first bad load is within this fraction above the last good.
        kind: ``rps`` stages (open model) or ``users`` stages (closed model); None: ``users`` for
            the streaming APIs (``chat``, ``stream-raw``), whose load is concurrent streams, else ``rps``.
        warmup: Each stage's warm-up, whose requests are not counted; empty: a fifth of the stage
            time, at least 1 s, and for rps stages at least twice one user's pace (all users sending).
    """

    slos: tuple[str, ...]
    stage_time: str = DEFAULT_SWEEP_STAGE_TIME
    resolution: float = DEFAULT_SWEEP_RESOLUTION
    kind: capacity.StageKind | None = None
    warmup: str = ""


def run_sweep(test: LoadTest, sweep: Sweep, output_dir: str | Path) -> Outcome:
    """Finds the most load the target holds within the SLOs, one load test per stage.

    The first stage runs at ``test.target_rps`` (rps stages; default 1) or ``test.users`` (users
    stages); ``test.run_time`` bounds the whole sweep.

    Args:
        test: The target, locustfile and payloads, as for one load test.
        sweep: The SLOs, stage time and resolution.
        output_dir: Directory for ``report.html``, ``stats.json`` and ``stages/``.

    Returns:
        The outcome; ``outcome.stats["capacity"]`` holds the stages and what was found.

    Raises:
        BadInput: an input is wrong (the message names it).
    """
    streaming = test.api != target.Api.PREDICT
    kind = sweep.kind or (capacity.StageKind.USERS if streaming else capacity.StageKind.RPS)
    thresholds = slo.parse_all(list(sweep.slos), baseline_given=False)
    budget_s = parse_duration(test.run_time)
    stage_s = parse_duration(sweep.stage_time, "stage time")
    warmup_s = parse_duration(sweep.warmup, "warm-up") if sweep.warmup else max(1, stage_s // 5)
    if kind is capacity.StageKind.RPS and not sweep.warmup:
        # Users start within half the warm-up, then each waits up to one pace for its phase.
        warmup_s = max(warmup_s, math.ceil(2 * capacity.pace_s(thresholds, test.request_timeout_s)))
    if not 0 < sweep.resolution < 1:
        raise BadInput(f"sweep resolution {sweep.resolution!r} must be a fraction between 0 and 1, e.g. 0.1")
    if cluster.role_from_spec(os.environ.get(cluster.ENV)).kind != "single":
        raise BadInput(
            "a capacity sweep runs on one machine (give it more processes); CLUSTER_SPEC names a "
            "distributed run: sweep without worker replicas"
        )
    start = test.target_rps if kind is capacity.StageKind.RPS else float(test.users)
    search = capacity.Search(start=start or 1.0, resolution=sweep.resolution, kind=kind)
    output = Path(output_dir)
    shutil.rmtree(output / STAGES_DIR, ignore_errors=True)
    began = time.monotonic()
    overhead_s = STAGE_OVERHEAD_GUESS_S
    stages: list[capacity.StageResult] = []
    outcomes: list[Outcome] = []
    stopped = "found"
    while (load := search.next_load()) is not None:
        if time.monotonic() - began + warmup_s + stage_s + overhead_s > budget_s:
            stopped = "run-time"
            logger.info(
                "sweep: no time left for a stage of %g %s within run time %s", load, kind, test.run_time
            )
            break
        directory = output / STAGES_DIR / f"{len(stages):02d}-{kind}-{load:g}"
        logger.info(
            "sweep stage %d: %g %s for %ds after a %ds warm-up",
            len(stages),
            load,
            kind,
            stage_s,
            warmup_s,
        )
        stage_began = time.monotonic()
        outcome = run_load_test(_stage_test(test, kind, load, thresholds, stage_s, warmup_s), directory)
        assert outcome is not None  # a single machine always writes its outputs
        overhead_s = max(0.0, time.monotonic() - stage_began - warmup_s - stage_s)
        verdict, breached = capacity.judge_stage(kind, load, outcome.stats, thresholds)
        stages.append(
            capacity.StageResult(
                kind, load, outcome.stats, verdict, breached, str(directory.relative_to(output))
            )
        )
        outcomes.append(outcome)
        logger.info(
            "sweep stage %d: %g %s -> %s rps achieved, p95 %s: %s%s",
            len(stages) - 1,
            load,
            kind,
            outcome.stats["totals"]["rps"],
            slo.format_value("p95", outcome.stats["totals"]["latency_ms"]["p95"]),
            verdict,
            f" ({'; '.join(breached)})" if breached else "",
        )
        if verdict is capacity.StageVerdict.INCONCLUSIVE:
            stopped = capacity.GENERATOR if breached == (capacity.GENERATOR,) else capacity.INCOMPLETE
            break
        search.record(load, verdict is capacity.StageVerdict.WITHIN)
    else:
        stopped = "found" if search.good is not None else "nothing-holds"
    if not stages:
        raise BadInput(
            f"run time {test.run_time} leaves no room for one stage of {warmup_s + stage_s}s plus Locust's "
            f"start and stop: give the sweep a longer run time (e.g. 10m) or a shorter stage time"
        )
    section = capacity.section(
        stages,
        sweep.slos,
        kind=kind,
        resolution=sweep.resolution,
        stage_time_s=stage_s,
        warmup_s=warmup_s,
        stopped=stopped,
    )
    shown = section["max_within_slo"]["stage"] if section["max_within_slo"] else len(stages) - 1
    stats = _sweep_stats(outcomes[shown].stats, outcomes[-1].stats, section, time.monotonic() - began)
    stats_file = write_stats(stats, output)
    report = output / REPORT_FILE
    capacity_report.write(report, section, outcomes[shown].report)
    print(f"capacity sweep: {section['summary']}", flush=True)
    return Outcome(stats, report, stats_file, output)


def _stage_test(
    test: LoadTest,
    kind: capacity.StageKind,
    load: float,
    thresholds: list[slo.Threshold],
    stage_s: int,
    warmup_s: int,
) -> LoadTest:
    if kind is capacity.StageKind.RPS:
        users = capacity.open_model_users(load, thresholds, test.request_timeout_s)
        target_rps = load
    else:
        users, target_rps = int(load), 0.0
    return dataclasses.replace(
        test,
        users=users,
        target_rps=target_rps,
        spawn_rate=max(1.0, math.ceil(users / max(warmup_s / 2, 0.5))),
        run_time=f"{warmup_s + stage_s}s",
        warmup_s=float(warmup_s),
        abort_on_breach=(),
    )


def _sweep_stats(
    shown: dict[str, Any], last: dict[str, Any], section: dict[str, Any], wall_s: float
) -> dict[str, Any]:
    """The shown stage's stats with the capacity section; incomplete when the last stage was."""
    stats = {**shown, "capacity": {**section, "wall_time_s": round(wall_s, 1)}}
    if not last["run"]["complete"]:
        stats["run"] = {**shown["run"], "complete": False, "stop_reason": last["run"]["stop_reason"]}
    return stats
