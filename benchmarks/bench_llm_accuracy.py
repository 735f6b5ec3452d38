"""Timing accuracy of generative load tests (issue 13), ours against the server's own truth.

``vertex-loadtest load-test --api chat`` (one Locust process, pinned to one core) streams from the
rehearsal's generative server (its own process, pinned to the other core), which logs the time it
wrote every content event. TTFT p50/p99 and TPOT p50 as we report them are compared with the same
percentiles of the server's log, at 64 and at 512 concurrent streams. Goal: error within 1% (within
0.5 ms below 50 ms). ``server lag p99`` is how late the server's own loop woke while requests ran: a
starved server stamps its truth late, so a large lag makes the comparison itself unreliable.
"""

import tempfile
import time
from pathlib import Path

from benchmarks.llm_harness import (
    ServerCosts,
    error,
    generative_server,
    nearest_rank,
    ours_numbers,
    run_ours,
    truth_numbers,
    truth_records,
    within_goal,
)

CONCURRENCY = (64, 512)
RUN_TIME_S = 30
OUTPUT_TOKENS = 64
METRICS = (("TTFT p50", "ttft_p50"), ("TTFT p99", "ttft_p99"), ("TPOT p50", "tpot_p50"))


def run(results_dir: Path) -> str:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for users in CONCURRENCY:
            with generative_server(work, ServerCosts()) as (url, truth_log):
                since = time.monotonic()
                ours = ours_numbers(run_ours(url, work, users, RUN_TIME_S, OUTPUT_TOKENS))
                time.sleep(0.5)  # requests still finishing when Locust stopped
                records = truth_records(truth_log, since)
            truth = truth_numbers(records)
            lag = nearest_rank([record["server_lag_ms"] for record in records], 0.99)
            for label, key in METRICS:
                met = "yes" if within_goal(ours[key], truth[key]) else "**no**"
                rows.append(
                    f"| {users} | {label} | {truth[key]:.2f} | {ours[key]:.2f} "
                    f"| {error(ours[key], truth[key])} | {met} | {lag:.1f} ms |"
                )
            rows.append(
                f"| {users} | requests, events/s | {truth['requests']:.0f}, {truth['events_per_s']:.0f} "
                f"| {ours['requests']:.0f}, {ours['events_per_s']:.0f} | | | |"
            )
    return "\n".join(
        [
            f"Generative timing accuracy: {RUN_TIME_S} s per run, {OUTPUT_TOKENS} output tokens per request, "
            f"server step {ServerCosts.decode_base_ms} ms + {ServerCosts.decode_per_seq_ms} ms per sequence.",
            "",
            "| streams | metric | server truth (ms) | ours (ms) | error | goal met | server lag p99 |",
            "| ---: | --- | ---: | ---: | ---: | --- | ---: |",
            *rows,
        ]
    )
