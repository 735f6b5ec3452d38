"""The latency gate's runtime: what the ``LatencyGateOp`` component and ``vertex-loadtest gate`` call.

``run_gate`` reads the stats, judges them (``verdict``), writes the Markdown verdict (``render``) and
logs the metrics. Imports nothing heavy (no kfp, locust, gevent): the gate image and the CLI stay small.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vertex_loadtest.errors import GateFailed
from vertex_loadtest.latency_gate import render
from vertex_loadtest.latency_gate.verdict import DEFAULT_MIN_REQUESTS, Verdict, describe, judge
from vertex_loadtest.slo import parse_all
from vertex_loadtest.stats import load_stats

logger = logging.getLogger(__name__)


def run_gate(
    stats: str | Path,
    slos: Sequence[str],
    baseline: str | Path | None = None,
    *,
    allow_incomplete: bool = False,
    allow_inconclusive: bool = False,
    min_requests: int = DEFAULT_MIN_REQUESTS,
    verdict_path: str | Path | None = None,
    log_metric: Callable[[str, float], Any] | None = None,
    fail_on_breach: bool = False,
) -> Verdict:
    """Reads the stats (and baseline), judges them, writes the verdict, logs the metrics.

    Args:
        stats: A ``stats.json`` or the directory holding it (the load test's stats artifact).
        slos: SLO expressions, e.g. ``["p95 < 200ms", "error_rate < 1%"]``.
        baseline: The baseline's ``stats.json`` (or directory), for relative expressions.
        allow_incomplete: See :func:`judge`.
        allow_inconclusive: See :func:`judge`.
        min_requests: See :func:`judge`.
        verdict_path: Where to write the Markdown verdict (a KFP ``Markdown`` artifact's path).
        log_metric: Called with each metric name and finite value (a KFP ``Metrics.log_metric``).
        fail_on_breach: Raise :class:`GateFailed` after writing the outputs unless the gate passed.

    Returns:
        The verdict.

    Raises:
        BadInput: any input the user must fix (exit code 2 in the CLI).
        GateFailed: the gate did not pass and ``fail_on_breach`` is set.
    """
    parse_all(slos, baseline_given=baseline is not None)  # bad expressions first, before any file
    stats_data = load_stats(stats)
    baseline_data = load_stats(baseline) if baseline is not None else None
    verdict = judge(
        stats_data,
        slos,
        baseline_data,
        allow_incomplete=allow_incomplete,
        allow_inconclusive=allow_inconclusive,
        min_requests=min_requests,
    )
    for index, evaluation in enumerate(verdict.evaluations, start=1):
        logger.info("SLO %d %s", index, describe(evaluation))
    (logger.info if verdict.passed else logger.warning)("%s", verdict.summary())
    if verdict_path is not None:
        path = Path(verdict_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render.markdown(verdict), encoding="utf-8")
    if log_metric is not None:
        for name, value in verdict.metrics().items():
            log_metric(name, value)
    if fail_on_breach and not verdict.passed:
        raise GateFailed(verdict)
    return verdict
