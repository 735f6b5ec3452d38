"""``stats.json``: the documented, versioned result of a load test, written by the load-test runtime
and read by the gate. Pure Python; safe to import anywhere.

Schema version 1 (``docs/stats-schema.md`` shows an example)::

    schema_version   1
    versions         {vertex_loadtest, locust}
    target           {host, path, endpoint, api}       endpoint: resource name or null; api: predict,
                                                       chat or stream-raw
    run              {started_at, ended_at (ISO 8601 UTC), duration_s, run_time_s,
                      complete (bool), stop_reason,     stop_reason: a StopReason
                      lost_workers}                     Locust workers that vanished mid-test
    load             {users, spawn_rate, processes, target_rps (or null), achieved_rps,
                      rps_shortfall (bool)}
    generator        {cpu_peak_percent, runnable_peak_percent, saturated (bool),
                      loop_lag_ms {p50, p99, max}}      runnable: on a CPU or waiting for one;
                                                        saturated: either at 90% or more;
                                                        loop lag: delay the generator's own work
                                                        added to events due on its loop (ms), over
                                                        every process that runs users; null: none
    totals           ENTRY over every request
    requests         {"METHOD name": ENTRY}            e.g. "POST :predict"
    error_messages   [{request, error, occurrences}]   the 20 most frequent failure messages
    capacity         only after a sweep (``docs/capacity-sweep.md``): {kind, slos, resolution,
                      stage_time_s, warmup_s, stages: [{kind, target, achieved_rps, users, in_flight,
                      requests, latency_ms, error_rate, generator_cpu_peak_percent, verdict, breached,
                      directory, generation (if any)}], max_within_slo: {rps, users, stage, target}
                      or null, limited_by (an SLO, "generator", ... or null), conclusive, stopped,
                      summary}; the other sections then describe the stage of max_within_slo

    ENTRY            {requests, successes, failures, failure_rate (0..1), rps,
                      latency_ms          successful requests only: what SLOs judge,
                      failure_latency_ms  failed requests only (fast 429/503s must not pull p95 down),
                      all_latency_ms      every request: the numbers Locust's HTML report shows,
                      errors              {kind: count} for every ErrorKind,
                      generation          only for requests that streamed generated tokens: GENERATION}
    *latency_ms      {min, mean, p50, p90, p95, p99, p99.9, max} in ms; all null without samples
    GENERATION       {ttft_ms, tpot_ms, itl_ms           *latency_ms shape (docs/llm-metrics.md),
                      input_tokens, output_tokens      {sum, mean, min, p50 ... p99.9, max} exact counts,
                      output_tokens_per_s,             output tokens over the measured duration,
                      token_count_source,              "usage" (server's usage), "events" or "mixed",
                      goodput}                         null, or {slos, requests, per_s, fraction}

For generative runs ``latency_ms`` is the E2E latency: request sent to last content event.

Percentiles are nearest rank on a 0.2%-resolution histogram (``vertex_loadtest.histogram``).
"""

import json
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from vertex_loadtest.errors import BadInput

SCHEMA_VERSION = 1
STATS_FILE = "stats.json"
LATENCY_KEYS = ("min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max")
#: How an SLO expression names a statistic -> its key in a ``*_ms`` summary (``avg`` is ``mean``).
STATISTIC_KEYS = {
    "p50": "p50",
    "p90": "p90",
    "p95": "p95",
    "p99": "p99",
    "p99.9": "p99.9",
    "avg": "mean",
    "mean": "mean",
    "min": "min",
    "max": "max",
}
LATENCY_FIELDS = ("latency_ms", "failure_latency_ms", "all_latency_ms")
#: ``capacity.limited_by`` when the load generator, not the endpoint, stopped a sweep.
LIMITED_BY_GENERATOR = "generator"
#: A generator whose event loop woke later than this at p99 (ms) delayed the responses it timed:
#: the gate marks the run inconclusive, as it does a saturated CPU.
LOOP_LAG_P99_LIMIT_MS = 5.0
SECTIONS = ("versions", "target", "run", "load", "generator", "totals", "requests")
#: What to do when every request was refused with 401/403 (the load-test log and the verdict say it).
AUTH_ADVICE = (
    "every request was refused with 401/403: the token is missing or expired. Run with auth google "
    "(Application Default Credentials: `gcloud auth application-default login` on a workstation, the "
    "pipeline's service account on Vertex AI, which needs roles/aiplatform.user); a locustfile that "
    "fetches one token in on_start loses it after an hour: subclass VertexEndpointUser, which refreshes it"
)


def all_refused_auth(totals: Mapping[str, Any]) -> bool:
    """True when requests were made and every one failed with 401/403 (error kind ``auth``)."""
    requests = totals.get("requests") or 0
    return bool(requests > 0 and (totals.get("errors") or {}).get("auth") == requests)


class ErrorKind(StrEnum):
    """Why a request failed: the keys of an entry's ``errors`` (in this order)."""

    AUTH = "auth"  # 401, 403
    THROTTLED = "throttled"  # 429
    SERVER = "server"  # 5xx
    CLIENT = "client"  # other 4xx
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    MALFORMED = "malformed"  # a 2xx answer that is not a prediction response (or an unreadable stream)
    STREAM_BROKEN = "stream-broken"  # a stream that ended before [DONE] or a finish_reason
    EMPTY_STREAM = "empty-stream"  # a complete stream without generated content
    OTHER = "other"


class StopReason(StrEnum):
    """Why a run ended: ``run.stop_reason``. Only ``run-time`` is a complete run."""

    RUN_TIME = "run-time"  # the planned run time elapsed
    INTERRUPTED = "interrupted"  # SIGTERM/SIGINT (a cancelled KFP task)
    DEADLINE = "deadline"  # the runtime's hard deadline passed
    WORKER_LOST = "worker-lost"  # a Locust worker vanished mid-test
    ABORTED_ON_BREACH = "aborted-on-breach"  # an abort_on_breach SLO stayed breached


def load_stats(path: str | Path) -> dict[str, Any]:
    """Reads and checks a ``stats.json`` (or the directory holding one).

    Args:
        path: The file, or a directory (such as a KFP artifact path) that holds ``stats.json``.

    Returns:
        The parsed stats.

    Raises:
        BadInput: the file is missing, is not JSON, or is not a stats file of a known schema version.
    """
    path = Path(path)
    if path.is_dir():
        path = path / STATS_FILE
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"stats file {path} does not exist: pass the stats.json a load test wrote") from None
    except (OSError, ValueError) as error:
        raise BadInput(f"stats file {path} is not readable JSON: {error}") from None
    if not isinstance(stats, dict) or stats.get("schema_version") != SCHEMA_VERSION:
        found = stats.get("schema_version") if isinstance(stats, dict) else type(stats).__name__
        raise BadInput(
            f"stats file {path} has schema_version {found!r}; this version of vertex-loadtest reads "
            f"{SCHEMA_VERSION}: re-run the load test with the same vertex-loadtest version as the gate"
        )
    missing = [section for section in SECTIONS if section not in stats]
    if missing:
        raise BadInput(f"stats file {path} lacks {', '.join(missing)}: it was not written by a load test")
    return stats


def write_stats(stats: dict[str, Any], directory: str | Path) -> Path:
    """Writes ``stats`` as ``directory/stats.json`` and returns the path."""
    path = Path(directory) / STATS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stats, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path
