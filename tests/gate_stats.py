"""Builds ``stats.json`` dicts per the documented schema (``vertex_loadtest.stats``) for the gate's tests.

Import it as ``from tests import gate_stats``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from vertex_loadtest.stats import LATENCY_KEYS, SCHEMA_VERSION, ErrorKind, write_stats

PREDICT = "POST :predict"
HEALTH = "GET /health"


def latency(**values: float | None) -> dict[str, float | None]:
    """A ``*latency_ms`` block; unspecified keys follow a plausible shape around p50."""
    base = values.get("p50", 100.0)
    if base is None:
        return dict.fromkeys(LATENCY_KEYS)
    block: dict[str, float | None] = {
        "min": base * 0.5,
        "mean": base * 1.05,
        "p50": base,
        "p90": base * 1.5,
        "p95": base * 1.8,
        "p99": base * 2.5,
        "p99.9": base * 3.0,
        "max": base * 3.5,
    }
    block.update({("mean" if key == "avg" else key): value for key, value in values.items()})
    return block


def entry(
    requests: int = 1000,
    failures: int = 0,
    rps: float | None = None,
    duration_s: float = 10.0,
    latency_ms: dict[str, float | None] | None = None,
    errors: dict[str, int] | None = None,
) -> dict[str, Any]:
    """One ENTRY: counts, rates and latency blocks (success latency null without successes)."""
    successes = requests - failures
    if latency_ms is None:
        latency_ms = latency() if successes else latency(p50=None)
    error_counts = dict.fromkeys(map(str, ErrorKind), 0)
    if failures:
        error_counts["server"] = failures
    error_counts.update(errors or {})
    return {
        "requests": requests,
        "successes": successes,
        "failures": failures,
        "failure_rate": failures / requests if requests else 0.0,
        "rps": rps if rps is not None else (requests / duration_s if duration_s else 0.0),
        "latency_ms": latency_ms,
        "failure_latency_ms": latency(p50=5.0) if failures else latency(p50=None),
        "all_latency_ms": latency_ms if not failures else latency(p50=50.0),
        "errors": error_counts,
    }


def stats(
    totals: dict[str, Any] | None = None,
    requests: dict[str, dict[str, Any]] | None = None,
    *,
    complete: bool = True,
    stop_reason: str = "run-time",
    saturated: bool = False,
    cpu_peak_percent: float = 40.0,
    target_rps: float | None = None,
    achieved_rps: float | None = None,
    rps_shortfall: bool = False,
    loop_lag_p99_ms: float | None = 0.05,
) -> dict[str, Any]:
    """A whole stats.json dict; ``requests`` defaults to one ``POST :predict`` equal to the totals."""
    totals = totals if totals is not None else entry()
    if requests is None:
        requests = {PREDICT: copy.deepcopy(totals)} if totals["requests"] else {}
    return {
        "schema_version": SCHEMA_VERSION,
        "versions": {"vertex_loadtest": "test", "locust": "2.46.6"},
        "target": {"host": "http://127.0.0.1:8080", "path": "/v1/predict", "endpoint": None},
        "run": {
            "started_at": "2026-11-25T08:00:00Z",
            "ended_at": "2026-11-25T08:00:10Z",
            "duration_s": 10.0,
            "run_time_s": 10.0,
            "complete": complete,
            "stop_reason": stop_reason,
        },
        "load": {
            "users": 10,
            "spawn_rate": 10,
            "processes": 1,
            "target_rps": target_rps,
            "achieved_rps": achieved_rps if achieved_rps is not None else totals["rps"],
            "rps_shortfall": rps_shortfall,
        },
        "generator": {
            "cpu_peak_percent": cpu_peak_percent,
            "saturated": saturated,
            "loop_lag_ms": {
                "p50": None if loop_lag_p99_ms is None else loop_lag_p99_ms / 4,
                "p99": loop_lag_p99_ms,
                "max": None if loop_lag_p99_ms is None else loop_lag_p99_ms * 3,
            },
        },
        "totals": totals,
        "requests": requests,
    }


def write(directory: Path, data: dict[str, Any]) -> Path:
    """Writes ``directory/stats.json`` and returns the file path."""
    return write_stats(data, directory)
