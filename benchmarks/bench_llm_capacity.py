"""Generator capacity for streamed generation (issue 13), side by side with NVIDIA AIPerf.

Each tool in turn streams from a fresh rehearsal generative server (its own process, pinned to one
core) while pinned itself to the other core, at growing concurrency: ours as ``vertex-loadtest
load-test --api chat`` with one Locust process, AIPerf as ``aiperf profile --endpoint-type chat
--streaming`` (installed on first use into its own virtual environment; ``llm_harness``). For each
run: the content events per second the server wrote (its truth), each tool's TTFT p50 against the
server's, and for ours the generator's loop lag (when stats.json reports it) and CPU.

A tool *sustains* a concurrency while its TTFT p50 stays within 5 ms of the server's truth (a
lagging generator reads every first token late) and, for ours, its loop lag p99 stays under 5 ms.
Goal: ours sustains more streams and more events per second than AIPerf.
"""

import math
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.llm_harness import (
    ServerCosts,
    ensure_aiperf,
    generative_server,
    nearest_rank,
    ours_numbers,
    run_aiperf,
    run_ours,
    truth_numbers,
    truth_records,
)

CONCURRENCY = (16, 32, 64, 128, 256, 512)
RUN_TIME_S = 20
OUTPUT_TOKENS = 64
LAG_LIMIT_MS = 5.0
COSTS = ServerCosts(decode_base_ms=15.0, decode_per_seq_ms=0.03, max_seqs=4096)


def _ours(url: str, work: Path, users: int) -> dict[str, float]:
    return ours_numbers(run_ours(url, work, users, RUN_TIME_S, OUTPUT_TOKENS))


def _aiperf(url: str, work: Path, users: int) -> dict[str, float]:
    return run_aiperf(url, work, users, RUN_TIME_S, OUTPUT_TOKENS)


def _measure(tool: Callable[[str, Path, int], dict[str, float]], work: Path, users: int) -> dict[str, Any]:
    with generative_server(work, COSTS) as (url, truth_log):
        since = time.monotonic()
        try:
            numbers: dict[str, Any] = tool(url, work, users)
        except (subprocess.CalledProcessError, OSError, KeyError, ValueError) as failure:
            numbers = {"failed": f"{type(failure).__name__}: {failure}"[:120]}
        time.sleep(0.5)
        records = truth_records(truth_log, since)
    numbers["truth"] = truth_numbers(records) if records else None
    numbers["server_lag"] = nearest_rank([r["server_lag_ms"] for r in records], 0.99) if records else math.nan
    return numbers


def _sustained(numbers: dict[str, Any]) -> bool:
    truth = numbers["truth"]
    if "failed" in numbers or truth is None:
        return False
    lag = numbers.get("loop_lag_ms", math.nan)
    return abs(numbers["ttft_p50"] - truth["ttft_p50"]) <= LAG_LIMIT_MS and not lag > LAG_LIMIT_MS


def _row(tool: str, users: int, numbers: dict[str, Any]) -> str:
    truth = numbers["truth"]
    if "failed" in numbers or truth is None:
        return f"| {tool} | {users} | | | | | | | {numbers.get('failed', 'no request finished')} |"
    cells = [
        f"{truth['events_per_s']:.0f}",
        f"{truth['ttft_p50']:.1f}",
        f"{numbers['ttft_p50']:.1f}",
        f"{numbers['ttft_p50'] - truth['ttft_p50']:+.1f}",
        "n/a" if math.isnan(numbers["loop_lag_ms"]) else f"{numbers['loop_lag_ms']:.1f}",
        "n/a" if math.isnan(numbers["cpu_percent"]) else f"{numbers['cpu_percent']:.0f}%",
        f"{numbers['server_lag']:.1f}",
    ]
    return f"| {tool} | {users} | {' | '.join(cells)} | {'yes' if _sustained(numbers) else '**no**'} |"


def run(results_dir: Path) -> str:
    tools: dict[str, Callable[[str, Path, int], dict[str, float]]] = {"ours": _ours}
    notes = []
    try:
        ensure_aiperf()
        tools["AIPerf"] = _aiperf
    except (subprocess.CalledProcessError, OSError) as failure:
        notes.append(f"AIPerf could not be installed ({failure}); only ours was measured.")
    rows, best = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for users in CONCURRENCY:
            for tool, measure in tools.items():
                numbers = _measure(measure, work, users)
                rows.append(_row(tool, users, numbers))
                if _sustained(numbers):
                    best[tool] = (users, numbers["truth"]["events_per_s"])
    summary = [
        f"- {tool}: sustains {best[tool][0]} streams, {best[tool][1]:.0f} content events/s"
        if tool in best
        else f"- {tool}: sustains none of the concurrencies tried"
        for tool in tools
    ]
    return "\n".join(
        [
            f"Generator capacity on one core: {RUN_TIME_S} s per run, {OUTPUT_TOKENS} output tokens per "
            f"request, server step {COSTS.decode_base_ms} ms + {COSTS.decode_per_seq_ms} ms per sequence. "
            f"Sustained: TTFT p50 within {LAG_LIMIT_MS:g} ms of the server's truth and loop lag p99 under "
            f"{LAG_LIMIT_MS:g} ms (when measured).",
            "",
            "| tool | streams | events/s (server) | TTFT p50 truth | TTFT p50 tool | difference (ms) "
            "| loop lag p99 (ms) | generator CPU | server lag p99 (ms) | sustained |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
            *rows,
            "",
            *summary,
            *notes,
        ]
    )
