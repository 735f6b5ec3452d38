"""The capacity sweep's pure core: the load of each stage, the search over stages, each stage's verdict
and the ``capacity`` section of ``stats.json``. No locust import; the sweep controller (``sweep``) runs
the stages.

A stage is one load, held for the stage time: an open-model request rate (``rps``) or a number of
concurrent users (``users``, for generative APIs where a request's length varies with its answer).
The search doubles the load from the first stage until a stage breaches, then bisects between the
last stage within the SLOs and the first beyond them until they are within the resolution of each
other. A stage where the load generator saturated (or that did not complete) stops the search as
inconclusive: it says nothing about the endpoint.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from vertex_loadtest import slo
from vertex_loadtest.stats import LIMITED_BY_GENERATOR, LOOP_LAG_P99_LIMIT_MS

#: ``limited_by`` when the load generator, not the endpoint, stopped the sweep.
GENERATOR = LIMITED_BY_GENERATOR
#: ``limited_by`` when an open-model stage did not reach its rate though the generator had CPU left.
SHORTFALL = "target rate not reached"
#: ``limited_by`` when a stage made requests but none succeeded.
NO_SUCCESS = "no successful requests"
#: ``limited_by`` when a stage was interrupted or passed its deadline.
INCOMPLETE = "incomplete"
#: The lowest load a search goes down to before it concludes that nothing holds.
MIN_LOAD = {"rps": 0.1, "users": 1.0}


class StageKind(StrEnum):
    """What a stage holds constant."""

    RPS = "rps"  # an open-model request rate (constant-throughput users)
    USERS = "users"  # a number of concurrent users (closed model)


class StageVerdict(StrEnum):
    """A stage's result: ``capacity.stages[].verdict``."""

    WITHIN = "within"  # every SLO held
    BREACHED = "breached"  # an SLO breached, or the rate was not reached
    INCONCLUSIVE = "inconclusive"  # the generator saturated or the stage did not complete


@dataclass
class Search:
    """Doubling, then bisection, over stage loads.

    Attributes:
        start: The first stage's load.
        resolution: Stop bisecting when the first bad load is within this fraction above the last good.
        kind: Integer loads for ``users`` stages.
    """

    start: float
    resolution: float = 0.1
    kind: StageKind = StageKind.RPS
    good: float | None = None
    bad: float | None = None
    tried: list[float] = field(default_factory=list)

    def next_load(self) -> float | None:
        """The next stage's load, or None when the search is over."""
        if self.bad is None:
            load = self.start if self.good is None else self.good * 2
        elif self.good is None:
            load = self.bad / 2
            if load < MIN_LOAD[self.kind]:
                return None
        else:
            if self.bad - self.good <= self.resolution * self.good:
                return None
            load = (self.good + self.bad) / 2
        load = self._round(load)
        if load in self.tried:
            return None
        return load

    def record(self, load: float, within: bool) -> None:
        """Files a judged stage."""
        self.tried.append(load)
        if within:
            self.good = load if self.good is None else max(self.good, load)
        else:
            self.bad = load if self.bad is None else min(self.bad, load)

    def _round(self, load: float) -> float:
        if self.kind is StageKind.USERS:
            return float(max(1, round(load)))
        return float(f"{load:.3g}") if load < 100 else float(round(load))


def pace_s(thresholds: Sequence[slo.Threshold], request_timeout_s: float) -> float:
    """Seconds between one open-model user's requests: twice the largest latency bound of the SLOs (at
    least 0.5 s; 1 s without one), so users fall behind only when the endpoint breaches anyway."""
    bounds = [
        t.value for t in thresholds if t.is_latency and t.value is not None and t.operator in ("<", "<=")
    ]
    return min(max(2 * max(bounds) / 1000, 0.5) if bounds else 1.0, request_timeout_s)


def open_model_users(target_rps: float, thresholds: Sequence[slo.Threshold], request_timeout_s: float) -> int:
    """Locust users for an open-model stage of ``target_rps``, each at :func:`pace_s`."""
    return max(1, math.ceil(target_rps * pace_s(thresholds, request_timeout_s)))


@dataclass(frozen=True)
class StageResult:
    """One judged stage."""

    kind: StageKind
    target: float
    stats: Mapping[str, Any]
    verdict: StageVerdict
    breached: tuple[str, ...] = ()
    directory: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The stage as ``capacity.stages[]`` shows it."""
        totals = self.stats["totals"]
        latency = totals["latency_ms"]
        mean = latency.get("mean")
        stage: dict[str, Any] = {
            "kind": str(self.kind),
            "target": self.target,
            "achieved_rps": totals["rps"],
            "users": self.stats["load"]["users"],
            "in_flight": round(totals["rps"] * mean / 1000, 2) if mean is not None else 0.0,
            "requests": totals["requests"],
            "latency_ms": dict(latency),
            "error_rate": totals["failure_rate"],
            "generator_cpu_peak_percent": self.stats["generator"]["cpu_peak_percent"],
            "verdict": str(self.verdict),
            "breached": list(self.breached),
            "directory": self.directory,
        }
        if totals.get("generation"):
            stage["generation"] = totals["generation"]
        return stage


def judge_stage(
    kind: StageKind, target: float, stats: Mapping[str, Any], thresholds: Sequence[slo.Threshold]
) -> tuple[StageVerdict, tuple[str, ...]]:
    """Judges one stage with the gate's SLO language: the verdict and what breached (or why it is
    inconclusive)."""
    run, generator, totals = stats["run"], stats["generator"], stats["totals"]
    if not run["complete"]:
        return StageVerdict.INCONCLUSIVE, (f"stage did not complete ({run['stop_reason']})",)
    lag_p99 = (generator.get("loop_lag_ms") or {}).get("p99")
    if generator["saturated"] or (lag_p99 is not None and lag_p99 > LOOP_LAG_P99_LIMIT_MS):
        return StageVerdict.INCONCLUSIVE, (GENERATOR,)
    if totals["successes"] == 0:
        return StageVerdict.BREACHED, (NO_SUCCESS,)
    breached = [
        evaluation.threshold.text
        for evaluation in slo.evaluate_all(thresholds, stats)
        if not evaluation.passed
    ]
    if kind is StageKind.RPS and stats["load"]["rps_shortfall"]:
        breached.append(SHORTFALL)
    return (StageVerdict.BREACHED if breached else StageVerdict.WITHIN), tuple(breached)


def section(
    stages: Sequence[StageResult],
    slos: Sequence[str],
    *,
    kind: StageKind,
    resolution: float,
    stage_time_s: int,
    warmup_s: int,
    stopped: str,
) -> dict[str, Any]:
    """Returns the ``capacity`` section of ``stats.json``.

    Args:
        stages: The judged stages, in the order they ran.
        slos: The SLO expressions each stage was judged by.
        kind: What the stages held constant.
        resolution: The bisection's resolution.
        stage_time_s: Each stage's measured time; warmup_s: its warm-up before that.
        stopped: Why the search ended: ``found`` (bisected to the resolution), ``generator``,
            ``incomplete``, ``run-time`` (the overall limit) or ``nothing-holds``.
    """
    good = [stage for stage in stages if stage.verdict is StageVerdict.WITHIN]
    best = max(good, key=lambda stage: stage.target) if good else None
    beyond = [
        s for s in stages if s.verdict is StageVerdict.BREACHED and (best is None or s.target > best.target)
    ]
    inconclusive = [stage for stage in stages if stage.verdict is StageVerdict.INCONCLUSIVE]
    if inconclusive:
        limited_by: str | None = GENERATOR if inconclusive[-1].breached == (GENERATOR,) else INCOMPLETE
    elif beyond:
        limited_by = min(beyond, key=lambda stage: stage.target).breached[0]
    else:
        limited_by = None
    max_within: dict[str, Any] | None = None
    if best is not None:
        shown = best.as_dict()
        max_within = {
            "rps": shown["achieved_rps"],
            "users": shown["users"] if kind is StageKind.USERS else shown["in_flight"],
            "stage": stages.index(best),
            "target": best.target,
        }
    return {
        "kind": str(kind),
        "slos": list(slos),
        "resolution": resolution,
        "stage_time_s": stage_time_s,
        "warmup_s": warmup_s,
        "stages": [stage.as_dict() for stage in stages],
        "max_within_slo": max_within,
        "limited_by": limited_by,
        "conclusive": not inconclusive and best is not None and bool(beyond),
        "stopped": stopped,
        "summary": summary_line(max_within, limited_by, kind, stages, stopped),
    }


def rate(value: float) -> str:
    """A rate to three significant digits: 92.5, 1230."""
    return f"{float(f'{value:.3g}'):g}"


def summary_line(
    max_within: Mapping[str, Any] | None,
    limited_by: str | None,
    kind: StageKind,
    stages: Sequence[StageResult],
    stopped: str,
) -> str:
    """One sentence: what the sweep found."""
    unit = "rps" if kind is StageKind.RPS else "users"
    if limited_by == GENERATOR:
        held = f"; the endpoint held at least {rate(max_within['rps'])} rps" if max_within else ""
        return (
            f"inconclusive: the load generator saturated before the endpoint breached an SLO{held}; "
            f"give the load test more CPU or processes"
        )
    if limited_by == INCOMPLETE:
        return "inconclusive: a stage did not complete (interrupted or past its deadline)"
    if max_within is None:
        lowest = min((stage.target for stage in stages), default=0)
        return f"no stage held the SLOs, down to {lowest:g} {unit} (limited by {limited_by})"
    held = f"{rate(max_within['rps'])} rps"
    if kind is StageKind.USERS:
        held += f" at {max_within['users']:g} users"
    if limited_by is None:
        tried = max(stage.target for stage in stages)
        why = "the overall run time ran out" if stopped == "run-time" else "the search ended"
        return (
            f"the endpoint held everything tried, up to {tried:g} {unit} ({why}): "
            f"its capacity is at least {held}"
        )
    return f"the endpoint holds {held} within the SLOs; the next stage up: {limited_by}"
