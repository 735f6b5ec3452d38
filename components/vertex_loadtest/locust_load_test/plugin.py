"""Our Locust plugin: loaded ahead of the team's locustfile in every Locust process
(``locust -f plugin.py,theirs.py``), never in the component's own process.

- Finer latency buckets through Locust's own hook: ``StatsEntry._log_response_time`` files each
  sample in a 0.2% bucket and percentiles are nearest rank (``vertex_loadtest.histogram``), so the
  HTML report, the CSVs and ``stats.json`` show the same, accurate numbers.
- Success and failure latencies and failure kinds (``recorder.Recorder``), and for generative runs
  TTFT, TPOT, ITL, tokens and goodput (``generation_stats``, from the ``generation`` a
  ``VertexChatUser`` puts in the request's context), merged from the workers through Locust's
  ``report_to_master`` / ``worker_report`` events.
- Request clocks that do not run while other users work (``client_clock``); percentiles computed
  once per histogram state, not once per percentile; the start-up heap frozen out of the collector.
- Event-loop lag of every process that runs users (``loop_lag.LoopLag``), merged the same way.
- Open-model pacing when the run has a target rps: each user sends at its share of the rate, on its
  own schedule, at a phase spread evenly over one interval (Locust starts a second's users at once:
  in step they would arrive in bursts); a user that falls behind by more than an interval does not
  burst to catch up. And a progress line every few seconds.
- Early abort (k6's ``abortOnFail``): with ``abort_on_breach`` SLOs, the master stops the run once one
  has been breached at every check for ``ABORT_CHECKS`` seconds after the grace period.
- Warm-up (a sweep stage): every process forgets what it recorded in its first ``warmup_s`` seconds,
  so a stage's histograms hold its steady load only.
- The master writes everything the runtime needs for ``stats.json`` to the dump file with every
  progress line, and a final one at quit: a Locust killed mid-run still leaves its numbers.
- The HTML report names the team's locustfile as its script (Locust would name this plugin) and shows
  latencies at 3 significant digits (``histogram.readable``).
"""

import gc
import itertools
import json
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import gevent
import locust
from locust import events
from locust import html as locust_html
from locust import stats as locust_stats
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from vertex_loadtest import histogram, slo
from vertex_loadtest.errors import BadInput
from vertex_loadtest.locust_load_test import client_clock, goodput, results
from vertex_loadtest.locust_load_test.generation_stats import GenerationRecorder
from vertex_loadtest.locust_load_test.loop_lag import LoopLag
from vertex_loadtest.locust_load_test.recorder import Recorder, classify
from vertex_loadtest.locust_load_test.run_config import RunConfig
from vertex_loadtest.stats import StopReason

CONFIG = RunConfig.from_environment()
RECORDER = Recorder()
GENERATION = GenerationRecorder(goodput.parse(CONFIG.goodput), CONFIG.series_window_s)
LOOP_LAG = LoopLag()
REPORT_KEY = "vertex_loadtest"
GENERATION_KEY = "vertex_loadtest_generation"
LAG_REPORT_KEY = "vertex_loadtest_loop_lag"
#: Consecutive one-second checks an SLO must fail, after the grace period, before the run is aborted.
ABORT_CHECKS = 3
ABORTED: dict[str, Any] = {}  # why the run was aborted early, once it was
#: Users' phases: the golden-ratio sequence spreads any number of them evenly over an interval.
_PHASES = itertools.count()
_GOLDEN = 0.6180339887498949
logger = logging.getLogger("vertex_loadtest.progress")


def _log_response_time(self: Any, response_time: float | None) -> None:
    """Replaces Locust's two-significant-digit rounding with 0.2% buckets."""
    if response_time is None:
        self.num_none_requests += 1
        return
    self.total_response_time += response_time
    self.min_response_time = (
        response_time if self.min_response_time is None else min(self.min_response_time, response_time)
    )
    self.max_response_time = max(self.max_response_time, response_time)
    self.response_times[histogram.bucket(response_time)] += 1


client_clock.install()
locust_stats.StatsEntry._log_response_time = _log_response_time  # type: ignore[method-assign]
locust_stats.calculate_response_time_percentile = histogram.PercentileCache()  # type: ignore[assignment]
_render_template = locust_html.render_template_from


def _is_latency(key: str) -> bool:
    return key.endswith("_response_time") or key.startswith("response_time_percentile_") or key[0].isdigit()


def _render_readable(file: str, **kwargs: Any) -> str:
    """Renders Locust's templates; the HTML report with readable latencies (the live stats stay exact)."""
    if file == "report.html":
        args = kwargs["template_args"] = dict(kwargs["template_args"])
        for table in ("requests_statistics", "response_time_statistics"):
            args[table] = [
                {key: histogram.readable(v) if _is_latency(key) else v for key, v in row.items()}
                for row in args[table]
            ]
        args["history"] = [
            {key: [v[0], histogram.readable(v[1])] if _is_latency(key) else v for key, v in point.items()}
            for point in args["history"]
        ]
    return str(_render_template(file, **kwargs))  # type: ignore[no-untyped-call]


locust_html.render_template_from = _render_readable  # type: ignore[assignment]


@events.request.add_listener
def _on_request(
    request_type: str,
    name: str,
    response_time: float | None,
    exception: Any = None,
    response: Any = None,
    context: dict[str, Any] | None = None,
    **_kwargs: Any,
) -> None:
    kind = None
    if exception:  # a streamed failure names its kind (stream-broken, empty-stream, ...)
        kind = getattr(exception, "kind", None) or classify(getattr(response, "status_code", None), exception)
    RECORDER.record(f"{request_type} {name}", response_time, kind)
    generation = (context or {}).get("generation")
    if generation is not None and not exception:
        GENERATION.record(f"{request_type} {name}", generation)


@events.report_to_master.add_listener
def _on_report_to_master(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    data[REPORT_KEY] = RECORDER.take()
    data[GENERATION_KEY] = GENERATION.take()
    data[LAG_REPORT_KEY] = LOOP_LAG.take()


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    RECORDER.merge(data.get(REPORT_KEY, {}))
    GENERATION.merge(data.get(GENERATION_KEY, {}))
    LOOP_LAG.merge(data.get(LAG_REPORT_KEY))


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs: Any) -> None:
    # Everything imported so far lives for the whole run: out of the collector's reach, a full
    # collection pauses the event loop for well under a millisecond instead of ~100 (docs/measurement.md).
    gc.collect()
    gc.freeze()
    gevent.get_hub().loop.update_now()  # timers set next (Locust's run time) count from now, not before
    environment.locustfile = CONFIG.script or environment.locustfile
    if CONFIG.target_rps and environment.parsed_options is not None:
        interval_s = max(1, environment.parsed_options.num_users) / CONFIG.target_rps
        for user_class in environment.user_classes:
            _pace(user_class, interval_s)
    if isinstance(environment.runner, MasterRunner):
        _await_workers(environment.runner, CONFIG.expect_workers, CONFIG.expect_workers_max_wait_s)
    if not isinstance(environment.runner, MasterRunner):
        gevent.spawn(LOOP_LAG.probe, environment)
    if not isinstance(environment.runner, WorkerRunner):
        gevent.spawn(_report_progress, environment, CONFIG.progress_interval_s)
        if CONFIG.abort_on_breach:
            gevent.spawn(_abort_on_breach, environment, CONFIG.abort_on_breach, CONFIG.abort_grace_s)


def _pace(user_class: Any, interval_s: float) -> None:
    """Makes ``user_class`` start one task every ``interval_s`` seconds, at its own phase."""
    starting = user_class.on_start
    # Drawn here, after Locust forked its processes (the module was imported before): each process
    # gets its own offset, so the processes' users do not coincide.
    offset = random.SystemRandom().random()

    def on_start(user: Any) -> None:
        gevent.sleep((offset + next(_PHASES) * _GOLDEN) % 1 * interval_s)
        user._vertex_loadtest_due = time.monotonic()
        starting(user)

    def wait_time(user: Any) -> float:
        now = time.monotonic()
        due = getattr(user, "_vertex_loadtest_due", now) + interval_s
        user._vertex_loadtest_due = due if due > now - interval_s else now  # no burst to catch up
        return max(0.0, float(user._vertex_loadtest_due) - now)

    user_class.on_start, user_class.wait_time = on_start, wait_time


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_kwargs: Any) -> None:
    if CONFIG.warmup_s > 0:
        gevent.spawn_later(CONFIG.warmup_s, _forget_warmup, environment)


def _forget_warmup(environment: Environment) -> None:
    """Starts this process's statistics afresh (Locust's entries, errors and our recorders)."""
    if environment.runner is not None:
        environment.runner.stats.reset_all()
    for recorder in (RECORDER, GENERATION, LOOP_LAG):
        recorder.take()
    logger.info("warm-up of %gs over: statistics start now", CONFIG.warmup_s)


def _abort_on_breach(environment: Environment, expressions: tuple[str, ...], grace_s: float) -> None:
    """Stops the run when an SLO stays breached (the gate would fail it anyway): saves endpoint minutes."""
    slos = slo.parse_all(expressions, baseline_given=False)
    gevent.sleep(grace_s)
    streak = 0
    while True:
        runner = environment.runner
        if runner is None:
            return
        live = results.build_stats(
            _snapshot(runner),
            run={
                "ended_at": time.time(),
                "run_time_s": 0,
                "complete": False,
                "stop_reason": StopReason.RUN_TIME,
            },
            load={"users": 0, "spawn_rate": 0, "processes": 0, "target_rps": None},
            target={},
            cpu_peak_percent=0,
        )
        try:
            breached = [e for e in slo.evaluate_all(slos, live) if e.observed is not None and not e.passed]
        except BadInput:  # a request name not seen yet
            breached = []
        streak = streak + 1 if breached else 0
        if streak >= ABORT_CHECKS:
            ABORTED["breached"] = [
                f"{e.threshold.text} (observed {slo.format_value(e.threshold.metric, e.observed)})"
                for e in breached
            ]
            logger.warning(
                "aborting the run: SLO breached for %ds after the grace period: %s",
                ABORT_CHECKS,
                "; ".join(ABORTED["breached"]),
            )
            runner.quit()
            return
        gevent.sleep(1)


def _await_workers(runner: MasterRunner, expected: int, max_wait_s: float) -> None:
    """Lets the workers connect before Locust's headless start checks for them: that check polls once a
    second, so the first miss costs a whole second of every run."""
    deadline = time.monotonic() + max_wait_s
    while len(runner.clients.ready) < expected and time.monotonic() < deadline:
        gevent.sleep(0.02)
    if len(runner.clients.ready) < expected:
        replicas = CONFIG.worker_replicas
        logger.error(
            "only %d of %d Locust workers connected within %ds (connected: %s); expected from %s",
            len(runner.clients.ready),
            expected,
            max_wait_s,
            ", ".join(client.id for client in runner.clients.ready) or "none",
            ", ".join(replicas) or "this machine's processes",
        )


def _report_progress(environment: Environment, interval_s: float) -> None:
    started = time.monotonic()
    while True:
        gevent.sleep(interval_s)
        runner = environment.runner
        if runner is None:
            continue
        total = runner.stats.total
        try:
            p95 = total.get_current_response_time_percentile(0.95) or 0
        except ValueError:
            p95 = total.get_response_time_percentile(0.95)
        failure_pct = 100 * total.num_failures / total.num_requests if total.num_requests else 0.0
        logger.info(
            "progress: %4.0fs users=%d rps=%.1f p95=%.1fms requests=%d failures=%d (%.2f%%)",
            time.monotonic() - started,
            runner.user_count,
            total.current_rps,
            p95,
            total.num_requests,
            total.num_failures,
            failure_pct,
        )
        _write_dump(runner, final=False)


def _entry_dict(entry: locust_stats.StatsEntry) -> dict[str, Any]:
    return {
        "method": entry.method,
        "name": entry.name,
        "requests": entry.num_requests,
        "failures": entry.num_failures,
        "none_requests": entry.num_none_requests,
        "total_ms": entry.total_response_time,
        "min_ms": entry.min_response_time,
        "max_ms": entry.max_response_time,
        "histogram": sorted(entry.response_times.items()),
    }


def _snapshot(runner: Any) -> dict[str, Any]:
    """Everything the runtime needs for stats.json, as the master (or the only process) sees it now."""
    stats = runner.stats
    workers = {}
    if isinstance(runner, MasterRunner):
        workers = {client_id: client.state for client_id, client in runner.clients.items()}
    return {
        "locust_version": locust.__version__,
        "start_time": stats.start_time,
        "last_request_timestamp": stats.total.last_request_timestamp,
        "entries": [_entry_dict(entry) for entry in stats.entries.values()],
        "total": _entry_dict(stats.total),
        "recorder": RECORDER.to_dict(),
        "generation": GENERATION.to_dict(),
        "loop_lag": LOOP_LAG.latencies.to_dict(),
        "errors": [
            {"method": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences}
            for e in stats.errors.values()
        ],
        "workers": workers,
        "aborted": dict(ABORTED),
    }


def _write_dump(runner: Any, final: bool) -> None:
    """Replaces the dump file in one step (the runtime may read it after Locust was killed)."""
    if CONFIG.dump_path:
        partial = Path(f"{CONFIG.dump_path}.partial")
        partial.write_text(json.dumps({**_snapshot(runner), "final": final}), encoding="utf-8")
        os.replace(partial, CONFIG.dump_path)


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_kwargs: Any) -> None:
    runner = environment.runner
    if runner is not None and not isinstance(runner, WorkerRunner):
        _write_dump(runner, final=True)
