"""Turns what the Locust master dumped at quit into ``stats.json`` (schema in ``vertex_loadtest.stats``),
KFP metrics, and the summary printed at the end of a run. Pure Python.
"""

import datetime
import math
from typing import Any

from vertex_loadtest import histogram
from vertex_loadtest._version import __version__
from vertex_loadtest.locust_load_test import generation_stats
from vertex_loadtest.locust_load_test.recorder import Latencies
from vertex_loadtest.stats import (
    AUTH_ADVICE,
    LOOP_LAG_P99_LIMIT_MS,
    SCHEMA_VERSION,
    ErrorKind,
    all_refused_auth,
)

#: Achieving less than this share of a target rps marks the run as short of its target.
RPS_SHORTFALL_RATIO = 0.9
#: A load generator process above this CPU share measures its own queueing.
SATURATION_PERCENT = 90.0


def build_stats(
    dump: dict[str, Any],
    run: dict[str, Any],
    load: dict[str, Any],
    target: dict[str, Any],
    cpu_peak_percent: float,
    runnable_peak_percent: float = 0.0,
) -> dict[str, Any]:
    """Returns the ``stats.json`` document of a run.

    Args:
        dump: What the plugin wrote at quit (Locust entries, recorder, errors, times).
        run: ``ended_at`` (when Locust exited; used when no request was made), ``run_time_s``,
            ``complete``, ``stop_reason``, ``lost_workers`` as the runtime saw them.
        load: ``users``, ``spawn_rate``, ``processes``, ``target_rps``.
        target: ``host``, ``path``, ``endpoint``.
        cpu_peak_percent: Peak CPU of the busiest Locust process.
        runnable_peak_percent: Its peak share of time on a CPU or waiting for one (0: not measured).
    """
    # Locust's own window: first request to last, so rps matches its report.
    ended = float(dump.get("last_request_timestamp") or run["ended_at"])
    started = float(dump.get("start_time") or ended)
    duration = max(ended - started, 1e-9)
    recorded, generated = dump["recorder"], (dump.get("generation") or {}).get("entries", {})
    requests = {}
    for entry in dump["entries"]:
        name = f"{entry['method']} {entry['name']}"
        requests[name] = _entry(entry, recorded.get(name), duration)
        _add_generation(requests[name], generated.get(name), duration)
    totals = _entry(dump["total"], _merge_all(recorded.values()), duration)
    _add_generation(totals, generation_stats.merge_all(generated.values()), duration)
    target_rps = load.get("target_rps") or None
    achieved = totals["rps"]
    return {
        "schema_version": SCHEMA_VERSION,
        "versions": {"vertex_loadtest": __version__, "locust": dump.get("locust_version")},
        "target": target,
        "run": {
            "started_at": _iso(started),
            "ended_at": _iso(ended),
            "duration_s": round(duration, 3),
            "run_time_s": run["run_time_s"],
            "complete": run["complete"],
            "stop_reason": run["stop_reason"],
            "lost_workers": run.get("lost_workers", []),
        },
        "load": {
            "users": load["users"],
            "spawn_rate": load["spawn_rate"],
            "processes": load["processes"],
            "target_rps": target_rps,
            "achieved_rps": achieved,
            "rps_shortfall": bool(target_rps and achieved < RPS_SHORTFALL_RATIO * target_rps),
        },
        "generator": {
            "cpu_peak_percent": round(cpu_peak_percent, 1),
            "runnable_peak_percent": round(runnable_peak_percent, 1),
            "saturated": max(cpu_peak_percent, runnable_peak_percent) >= SATURATION_PERCENT,
            "loop_lag_ms": _loop_lag(dump.get("loop_lag")),
        },
        "totals": totals,
        "requests": requests,
        "error_messages": [
            {
                "request": f"{e['method']} {e['name']}",
                "error": e["error"][:300],
                "occurrences": e["occurrences"],
            }
            for e in sorted(dump.get("errors", []), key=lambda e: -e["occurrences"])[:20]
        ],
    }


def _add_generation(entry: dict[str, Any], generated: dict[str, Any] | None, duration: float) -> None:
    """Adds the optional ``generation`` object to the entry of a request name that streamed tokens."""
    summary = generation_stats.summary(generated, entry["requests"], duration)
    if summary is not None:
        entry["generation"] = summary


def _loop_lag(recorded: dict[str, Any] | None) -> dict[str, float | None]:
    lag = Latencies()
    if recorded:
        lag.merge(recorded)
    summary = lag.summary()
    return {key: summary[key] for key in ("p50", "p99", "max")}


def _merge_all(recorded: Any) -> dict[str, Any]:
    success, failure = Latencies(), Latencies()
    errors: dict[str, int] = {}
    for data in recorded:
        success.merge(data["success"])
        failure.merge(data["failure"])
        for kind, count in data["errors"].items():
            errors[kind] = errors.get(kind, 0) + count
    return {"success": success.to_dict(), "failure": failure.to_dict(), "errors": errors}


def _entry(locust_entry: dict[str, Any], recorded: dict[str, Any] | None, duration: float) -> dict[str, Any]:
    count, failures = locust_entry["requests"], locust_entry["failures"]
    success, failure = Latencies(), Latencies()
    errors: dict[str, int] = {}
    if recorded:
        success.merge(recorded["success"])
        failure.merge(recorded["failure"])
        errors = recorded["errors"]
    timed = count - locust_entry["none_requests"]
    return {
        "requests": count,
        "successes": count - failures,
        "failures": failures,
        "failure_rate": round(failures / count, 6) if count else 0.0,
        "rps": round(count / duration, 3),
        "latency_ms": success.summary(),
        "failure_latency_ms": failure.summary(),
        "all_latency_ms": histogram.summarize(
            {float(value): n for value, n in locust_entry["histogram"]},
            timed,
            locust_entry["total_ms"],
            locust_entry["min_ms"] or 0.0,
            locust_entry["max_ms"],
        ),
        "errors": {str(kind): int(errors.get(kind, 0)) for kind in ErrorKind},
    }


def _iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).isoformat(timespec="milliseconds")


def metrics(stats: dict[str, Any]) -> dict[str, float]:
    """Returns the headline numbers for KFP Metrics (latencies at 3 significant digits, as people read
    them); every value finite (NaN/inf break KFP)."""
    totals, latency = stats["totals"], stats["totals"]["latency_ms"]
    values: dict[str, float] = {
        "requests": totals["requests"],
        "failures": totals["failures"],
        "failure_rate": totals["failure_rate"],
        "rps": totals["rps"],
        "generator_cpu_peak_percent": stats["generator"]["cpu_peak_percent"],
        "complete": float(stats["run"]["complete"]),
    }
    lag_p99 = (stats["generator"].get("loop_lag_ms") or {}).get("p99")
    if lag_p99 is not None:
        values["generator_loop_lag_p99_ms"] = lag_p99
    for key in ("mean", "p50", "p90", "p95", "p99", "p99.9", "max"):
        if latency[key] is not None:
            values[f"latency_{key.replace('.', '_')}_ms"] = histogram.readable(latency[key])
    values.update(_generation_metrics(totals.get("generation")))
    best = (stats.get("capacity") or {}).get("max_within_slo")
    if best:
        values["capacity_rps"], values["capacity_users"] = best["rps"], best["users"]
    return {key: float(value) for key, value in values.items() if math.isfinite(float(value))}


def _generation_metrics(generation: dict[str, Any] | None) -> dict[str, float]:
    """The headline token numbers of a generative run (none for a ``:predict`` run)."""
    if not generation:
        return {}
    values = {
        "output_tokens": generation["output_tokens"]["sum"],
        "input_tokens": generation["input_tokens"]["sum"],
        "output_tokens_per_s": histogram.readable(generation["output_tokens_per_s"]),
    }
    for metric in ("ttft", "tpot", "itl"):
        for key in ("p50", "p90", "p99"):
            if generation[f"{metric}_ms"][key] is not None:
                values[f"{metric}_{key}_ms"] = histogram.readable(generation[f"{metric}_ms"][key])
    if generation["goodput"]:
        values["goodput_per_s"] = generation["goodput"]["per_s"]
        values["goodput_fraction"] = generation["goodput"]["fraction"]
    return values


def generation_line(generation: dict[str, Any]) -> str:
    """One readable line of a generative run's token numbers (the task log and the verdict)."""

    def ms(metric: str, key: str) -> str:
        value = generation[f"{metric}_ms"][key]
        return "-" if value is None else f"{value:g}ms"

    line = (
        f"generation: TTFT p50 {ms('ttft', 'p50')} p99 {ms('ttft', 'p99')}, "
        f"TPOT p50 {ms('tpot', 'p50')} p99 {ms('tpot', 'p99')}, ITL p99 {ms('itl', 'p99')}, "
        f"{generation['output_tokens']['sum']} output tokens ({generation['token_count_source']}), "
        f"{generation['output_tokens_per_s']:g} tokens/s"
    )
    if generation["goodput"]:
        goodput = generation["goodput"]
        line += (
            f", goodput {goodput['per_s']:g}/s ({100 * goodput['fraction']:.1f}% of requests met "
            f"{', '.join(goodput['slos'])})"
        )
    return line


def summary(stats: dict[str, Any]) -> str:
    """Returns a few readable lines for the end of the task log."""
    totals, run, latency = stats["totals"], stats["run"], stats["totals"]["latency_ms"]

    def ms(key: str) -> str:
        return "-" if latency[key] is None else f"{histogram.readable(latency[key]):g} ms"

    errors = ", ".join(f"{kind} {n}" for kind, n in totals["errors"].items() if n) or "none"
    lines = [
        f"load test {'complete' if run['complete'] else 'INCOMPLETE (' + run['stop_reason'] + ')'}: "
        f"{totals['requests']} requests in {run['duration_s']:g}s, {totals['rps']:g} rps, "
        f"{totals['failures']} failed ({100 * totals['failure_rate']:.2f}%)",
        f"latency of successful requests: p50 {ms('p50')}, p90 {ms('p90')}, p95 {ms('p95')}, "
        f"p99 {ms('p99')}, max {ms('max')}",
        f"failures by kind: {errors}",
        *([generation_line(totals["generation"])] if totals.get("generation") else []),
        f"load generator CPU peak {stats['generator']['cpu_peak_percent']:g}%"
        + (" (SATURATED: the generator measured itself)" if stats["generator"]["saturated"] else "")
        + _lag_text(stats["generator"].get("loop_lag_ms") or {}),
    ]
    if stats["load"]["target_rps"]:
        lines.append(
            f"target {stats['load']['target_rps']:g} rps, achieved {stats['load']['achieved_rps']:g} rps"
            + (" (SHORT of target)" if stats["load"]["rps_shortfall"] else "")
        )
    if all_refused_auth(totals):
        lines.append(AUTH_ADVICE)
    return "\n".join(lines)


def _lag_text(lag: dict[str, Any]) -> str:
    if lag.get("p99") is None:
        return ""
    late = " (LAGGING: responses waited for the generator)" if lag["p99"] > LOOP_LAG_P99_LIMIT_MS else ""
    return f", event loop lag p50 {lag['p50']:g}ms p99 {lag['p99']:g}ms max {lag['max']:g}ms{late}"
