"""``LatencyGateOp`` in pipelines: definition-time checks, and real ``kfp.local`` runs of the gate."""

import json
from pathlib import Path

import pytest
from kfp import compiler, dsl, local

from tests import gate_stats
from tests.gate_stats import entry, latency, stats
from vertex_loadtest import LatencyGateOp, LocustLoadTestOp
from vertex_loadtest.errors import BadInput
from vertex_loadtest.latency_gate.verdict import DEFAULT_MIN_REQUESTS


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def decide(choice: str, path: str):
    """Stands for a promotion step: records what the branch decided."""
    import pathlib

    pathlib.Path(path).write_text(choice)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def touch(path: str):
    """An exit task that leaves a mark, standing for the endpoint cleanup."""
    import pathlib

    pathlib.Path(path).write_text("cleaned up\n")


@dsl.pipeline
def gate_and_promote(stats_uri: str, slos: list, fail_on_breach: bool, cleanup_mark: str, decision: str):
    with dsl.ExitHandler(touch(path=cleanup_mark)):
        run = dsl.importer(artifact_uri=stats_uri, artifact_class=dsl.Artifact, reimport=False)
        gate = LatencyGateOp(stats=run.output, slos=slos, fail_on_breach=fail_on_breach)
        with dsl.If(gate.outputs["passed"] == True):  # noqa: E712 - a KFP condition, not a Python test
            decide(choice="promote", path=decision)
        with dsl.Else():
            decide(choice="hold", path=decision)


@dsl.pipeline
def load_test_then_gate(host: str, slos: list, fail_on_breach: bool, cleanup_mark: str, decision: str):
    with dsl.ExitHandler(touch(path=cleanup_mark)):
        load = LocustLoadTestOp(host=host, users=3, run_time="3s", processes=1)
        gate = LatencyGateOp(stats=load.outputs["stats"], slos=slos, fail_on_breach=fail_on_breach)
        with dsl.If(gate.outputs["passed"] == True):  # noqa: E712 - a KFP condition, not a Python test
            decide(choice="promote", path=decision)
        with dsl.Else():
            decide(choice="hold", path=decision)


@pytest.fixture
def local_runner(tmp_path):
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    return tmp_path / "root"


@pytest.fixture
def stats_uri(tmp_path) -> str:
    """A healthy run's stats artifact directory: p95 180 ms, 1000 requests, no errors."""
    return str(gate_stats.write(tmp_path / "stats", stats()).parent)


def run_pipeline(stats_uri: str, workdir: Path, **arguments):
    return gate_and_promote(
        stats_uri=stats_uri,
        cleanup_mark=str(workdir / "cleanup"),
        decision=str(workdir / "decision"),
        **arguments,
    )


def verdicts(root: Path) -> list[str]:
    return [path.read_text() for path in sorted(root.glob("**/latency-gate/verdict"))]


# --- definition time: bad constants fail at LatencyGateOp(...), before compile or submit -----------


def test_bad_constant_slos_fail_while_the_pipeline_is_defined():
    with pytest.raises(
        BadInput, match="SLO expression 'p95 < 200': the bound '200' of a latency has no unit"
    ):

        @dsl.pipeline
        def broken(stats_uri: str):
            run = dsl.importer(artifact_uri=stats_uri, artifact_class=dsl.Artifact)
            LatencyGateOp(stats=run.output, slos=["error_rate < 1%", "p95 < 200"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"slos": ["p59 < 200ms"]}, "unknown metric 'p59'"),
        ({"slos": []}, "no SLO expressions given"),
        ({"slos": "p95 < 200ms"}, "must be a list"),
        ({"slos": ["p95 < baseline * 1.1"]}, "LatencyGateOp has no baseline"),
        ({"slos": ["p95 < 1s"], "min_requests": -1}, "min_requests=-1"),
    ],
)
def test_bad_constants_are_rejected_at_the_call(kwargs, message):
    with pytest.raises(BadInput, match=message):

        @dsl.pipeline
        def broken(stats_uri: str):
            run = dsl.importer(artifact_uri=stats_uri, artifact_class=dsl.Artifact)
            LatencyGateOp(stats=run.output, **kwargs)


def test_constants_beside_runtime_values_are_still_checked():
    with pytest.raises(
        BadInput, match="SLO expression 'p95 < 200': the bound '200' of a latency has no unit"
    ):

        @dsl.pipeline
        def broken(stats_uri: str, extra_slo: str):
            run = dsl.importer(artifact_uri=stats_uri, artifact_class=dsl.Artifact)
            LatencyGateOp(stats=run.output, slos=[extra_slo, "p95 < 200"])


def test_runtime_values_pass_through_and_compile(tmp_path):
    @dsl.pipeline
    def parameterized(stats_uri: str, slos: list, extra_slo: str, baseline_uri: str, min_requests: int):
        run = dsl.importer(artifact_uri=stats_uri, artifact_class=dsl.Artifact)
        base = dsl.importer(artifact_uri=baseline_uri, artifact_class=dsl.Artifact)
        LatencyGateOp(stats=run.output, slos=slos, min_requests=min_requests)
        LatencyGateOp(stats=run.output, slos=["p95 < baseline * 1.1", extra_slo], baseline=base.output)

    package = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(parameterized, str(package))
    assert "latency-gate-2" in package.read_text()


def test_the_component_default_matches_the_runtime_default():
    spec = LatencyGateOp.component_spec.inputs
    assert spec["min_requests"].default == DEFAULT_MIN_REQUESTS
    assert spec["fail_on_breach"].default is True
    assert spec["baseline"].optional
    assert set(LatencyGateOp.component_spec.outputs) == {"verdict", "metrics", "passed"}
    assert LatencyGateOp.component_spec.implementation.container.image.rsplit("/", 1)[1].startswith(
        "latency-gate:"
    )


# --- kfp.local runs -----------------------------------------------------------------------------


@pytest.mark.slow
def test_passing_gate_takes_the_promote_branch(local_runner, stats_uri, tmp_path):
    run_pipeline(stats_uri, tmp_path, slos=["p95 < 200ms", "error_rate < 1%"], fail_on_breach=True)
    assert (tmp_path / "decision").read_text() == "promote"
    assert (tmp_path / "cleanup").exists()
    (verdict,) = verdicts(local_runner)
    assert verdict.startswith("## Latency gate: ✅ PASSED")


@pytest.mark.slow
def test_breach_without_fail_on_breach_returns_the_verdict_for_dsl_if(local_runner, stats_uri, tmp_path):
    run_pipeline(stats_uri, tmp_path, slos=["p95 < 150ms"], fail_on_breach=False)
    assert (tmp_path / "decision").read_text() == "hold"
    assert (tmp_path / "cleanup").exists()
    (verdict,) = verdicts(local_runner)
    assert "| 1 | `p95 < 150ms` | 180 ms | < 150 ms | -30 ms (-20.0%) | ❌ fail |" in verdict


@pytest.mark.slow
def test_breach_with_fail_on_breach_fails_the_pipeline_and_the_exit_task_still_runs(
    local_runner, stats_uri, tmp_path
):
    with pytest.raises(RuntimeError, match="latency-gate"):
        run_pipeline(stats_uri, tmp_path, slos=["p95 < 150ms"], fail_on_breach=True)
    assert (tmp_path / "cleanup").read_text() == "cleaned up\n"
    assert not (tmp_path / "decision").exists()
    (verdict,) = verdicts(local_runner)  # written before the task failed
    assert verdict.startswith("## Latency gate: ❌ FAILED")


@pytest.mark.slow
def test_a_gate_task_alone_with_baseline_and_metrics(local_runner, tmp_path):
    current = gate_stats.write(tmp_path / "v2", stats(entry(latency_ms=latency(p95=210.0)))).parent
    baseline = gate_stats.write(tmp_path / "v1", stats(entry(latency_ms=latency(p95=200.0)))).parent

    @dsl.pipeline
    def regression(current_uri: str, baseline_uri: str) -> bool:
        run = dsl.importer(artifact_uri=current_uri, artifact_class=dsl.Artifact)
        base = dsl.importer(artifact_uri=baseline_uri, artifact_class=dsl.Artifact)
        gate = LatencyGateOp(
            stats=run.output,
            baseline=base.output,
            slos=["p95 < baseline * 1.10", "rps >= baseline * 0.9"],
            fail_on_breach=False,
        )
        return gate.outputs["passed"]

    assert regression(current_uri=str(current), baseline_uri=str(baseline)).output is True
    (output,) = local_runner.glob("**/latency-gate/executor_output.json")
    metrics = json.loads(output.read_text())["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert metrics["passed"] == 1.0
    assert (metrics["slo1_p95_observed"], metrics["slo1_p95_threshold"], metrics["slo1_p95_margin"]) == (
        210.0,
        220.0,
        10.0,
    )
    assert metrics["slo2_rps_threshold"] == 90.0


@pytest.mark.slow
def test_runtime_bad_input_fails_the_task(local_runner, stats_uri, tmp_path):
    with pytest.raises(RuntimeError, match="latency-gate"):
        run_pipeline(stats_uri, tmp_path, slos=['"POST :nope": p95 < 1s'], fail_on_breach=False)
    assert (tmp_path / "cleanup").exists()


# --- the real thing: LocustLoadTestOp -> LatencyGateOp under kfp.local --------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("slos", "fail_on_breach", "decision"),
    [
        (["p95 < 1s", "error_rate < 1%", "requests >= 100"], True, "promote"),
        (["p95 < 1s", "p50 < 1ms"], False, "hold"),  # the server sleeps 2 ms
        (["p50 < 1ms"], True, None),
    ],
)
def test_load_test_then_gate(local_runner, prediction_server, tmp_path, slos, fail_on_breach, decision):
    arguments = {
        "host": prediction_server.url,
        "slos": slos,
        "fail_on_breach": fail_on_breach,
        "cleanup_mark": str(tmp_path / "cleanup"),
        "decision": str(tmp_path / "decision"),
    }
    if decision is None:
        with pytest.raises(RuntimeError, match="latency-gate"):
            load_test_then_gate(**arguments)
        assert not (tmp_path / "decision").exists()
    else:
        load_test_then_gate(**arguments)
        assert (tmp_path / "decision").read_text() == decision
    assert (tmp_path / "cleanup").exists()  # the exit task ran either way
    (verdict,) = verdicts(local_runner)
    assert ("✅ PASSED" in verdict) is (decision == "promote")
    assert prediction_server.counters.requests >= 100
