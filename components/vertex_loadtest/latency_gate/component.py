"""``LatencyGateOp``: the KFP definition of the latency gate.

The component function ``latency_gate`` only declares the interface and calls
``vertex_loadtest.latency_gate.gate.run_gate`` (the same function as ``vertex-loadtest gate``;
definition vs. runtime: ``docs/architecture.md``). The spec is named ``latency-gate``, like the image;
the component is exported as ``LatencyGateOp``, as google-cloud-pipeline-components does.

It is re-created as a :class:`PythonComponent` subclass whose ``__call__`` parses constant SLO
expressions while the pipeline is being defined, so a typo fails at ``LatencyGateOp(...)``, before
anything is compiled or submitted. Values only known at run time (pipeline parameters, upstream
outputs) pass through and are checked by the task itself.
"""

from typing import Any, NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Input, Markdown, Metrics, Output
from kfp.dsl.pipeline_channel import PipelineChannel
from kfp.dsl.python_component import PythonComponent

from vertex_loadtest._images import LATENCY_GATE, image_for


@dsl.component(base_image=image_for(LATENCY_GATE), install_kfp_package=False)
def latency_gate(
    stats: Input[Artifact],
    slos: list,
    verdict: Output[Markdown],
    metrics: Output[Metrics],
    baseline: Input[Artifact] = None,
    fail_on_breach: bool = True,
    allow_incomplete: bool = False,
    allow_inconclusive: bool = False,
    min_requests: int = 100,
) -> NamedTuple("Outputs", [("passed", bool)]):  # type: ignore[valid-type]
    """Judges a load test's stats against SLO expressions; fails the task or returns the verdict.

    Args:
        stats: The load test's stats artifact (a directory holding stats.json).
        slos: SLO expressions, all of which must hold, e.g. ["p95 < 200ms", "error_rate < 1%",
            "rps >= 50", "\\"POST :predict\\": p99 <= 1.5s", "p95 < baseline * 1.1"].
        baseline: Optional stats artifact of a previous run (e.g. the last release) for expressions
            relative to "baseline".
        fail_on_breach: Fail the task (and the pipeline) unless the gate passes; False returns the
            verdict in passed instead, for dsl.If.
        allow_incomplete: Judge a run that stopped before its planned end instead of failing it.
        allow_inconclusive: Judge a run whose load generator was saturated, that missed its target
            rate, or made fewer than min_requests requests, instead of failing it.
        min_requests: Fewer requests than this make the run inconclusive.

    Returns:
        verdict: Markdown verdict: status, reasons, one row per SLO (observed, threshold, margin).
        metrics: Observed values, thresholds and margins per SLO, and the run's totals.
        passed: True when every SLO holds on a complete, conclusive run with successful requests.
    """
    from vertex_loadtest.latency_gate.gate import run_gate

    result = run_gate(
        stats.path,
        slos,
        baseline.path if baseline is not None else None,
        allow_incomplete=allow_incomplete,
        allow_inconclusive=allow_inconclusive,
        min_requests=min_requests,
        verdict_path=verdict.path,
        log_metric=metrics.log_metric,
        fail_on_breach=fail_on_breach,
    )
    return (result.passed,)


class _LatencyGateComponent(PythonComponent):
    """The KFP component, checking constant arguments when the pipeline is defined."""

    def __call__(self, *args: Any, **kwargs: Any) -> dsl.PipelineTask:
        check_constant_arguments(kwargs)
        return super().__call__(*args, **kwargs)


def check_constant_arguments(kwargs: dict[str, Any]) -> None:
    """Rejects bad constant ``slos`` (and ``min_requests``) given to ``LatencyGateOp(...)``.

    Raises:
        BadInput: a constant expression is malformed, or compares with "baseline" while no
            baseline is given.
    """
    from vertex_loadtest.errors import BadInput
    from vertex_loadtest.slo import parse, parse_all

    slos = kwargs.get("slos")
    if "slos" in kwargs and not isinstance(slos, PipelineChannel):
        if isinstance(slos, list | tuple) and any(isinstance(item, PipelineChannel) for item in slos):
            constants = [item for item in slos if not isinstance(item, PipelineChannel)]
            thresholds = [parse(item) for item in constants]
        else:
            thresholds = parse_all(slos)
        if kwargs.get("baseline") is None:
            for threshold in thresholds:
                if threshold.uses_baseline:
                    raise BadInput(
                        f"SLO expression {threshold.text!r} compares with 'baseline' but LatencyGateOp has "
                        f"no baseline: pass baseline=<the last release's stats artifact> or an absolute value"
                    )
    min_requests = kwargs.get("min_requests")
    if (
        min_requests is not None
        and not isinstance(min_requests, PipelineChannel)
        and (isinstance(min_requests, bool) or not isinstance(min_requests, int) or min_requests < 0)
    ):
        raise BadInput(f"LatencyGateOp min_requests={min_requests!r}: give an integer >= 0 (default 100)")


latency_gate = _LatencyGateComponent(
    component_spec=latency_gate.component_spec, python_func=latency_gate.python_func
)
LatencyGateOp = latency_gate
