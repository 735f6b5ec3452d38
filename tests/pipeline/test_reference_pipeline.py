"""The reference pipeline: the compiled Vertex AI template, the local flavour's DAG, and the rehearsal
end to end in its three endings."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kfp import compiler

from vertex_loadtest import __version__, compile
from vertex_loadtest._images import DEFAULT_REGISTRY
from vertex_loadtest.pipelines.deploy_and_test import build_pipeline
from vertex_loadtest.rehearsal.standins import endpoint_create, model_deploy

TEMPLATE = compile.PACKAGE_DIR / "pipelines" / "deploy_and_test.yaml"
SIDE_EFFECT_TASKS = ("Label run", "Create endpoint", "Deploy model", "Test model performance")


@pytest.fixture(scope="module")
def vertex_spec() -> dict:
    return yaml.safe_load(TEMPLATE.read_text())


def tasks_by_display_name(spec: dict) -> dict[str, tuple[str, dict]]:
    """Every task of every DAG, keyed by display name: (DAG name, task)."""
    found = {"pipeline": spec["root"]["dag"]["tasks"]} | {
        name: component["dag"]["tasks"]
        for name, component in spec["components"].items()
        if "dag" in component
    }
    return {task["taskInfo"]["name"]: (dag, task) for dag, tasks in found.items() for task in tasks.values()}


def test_exit_task_runs_after_everything_and_gets_no_task_output(vertex_spec):
    _, cleanup = tasks_by_display_name(vertex_spec)["Clean up"]
    assert cleanup["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    for name, value in cleanup["inputs"].get("parameters", {}).items():
        assert "taskOutputParameter" not in value and "taskOutputArtifact" not in value, name
    assert "artifacts" not in cleanup["inputs"]
    assert cleanup["inputs"]["parameters"]["status"] == {
        "taskFinalStatus": {"producerTask": "exit-handler-1"}
    }


def test_side_effect_tasks_never_come_from_cache(vertex_spec):
    tasks = tasks_by_display_name(vertex_spec)
    for name in SIDE_EFFECT_TASKS:
        assert tasks[name][1]["cachingOptions"] == {}, f"{name} must not be cached"
    # Even when PipelineJob(enable_caching=True) overrides the options, a run-unique input rules out a hit:
    # the job name feeds Label run, whose labels feed Create endpoint, whose endpoint feeds the rest.
    job_name = {"runtimeValue": {"constant": "{{$.pipeline_job_name}}"}}
    assert tasks["Label run"][1]["inputs"]["parameters"]["run_name"] == job_name
    assert tasks["Clean up"][1]["inputs"]["parameters"]["run_name"] == job_name
    create_inputs = tasks["Create endpoint"][1]["inputs"]["parameters"]["labels"]
    assert create_inputs["taskOutputParameter"]["producerTask"] == "runlabelsop"
    for name in ("Deploy model", "Test model performance"):
        endpoint = tasks[name][1]["inputs"]["artifacts"]["endpoint"]["taskOutputArtifact"]
        assert endpoint == {"outputArtifactKey": "endpoint", "producerTask": "endpoint-create"}, name


def test_every_image_of_ours_is_this_versions(vertex_spec):
    images = [
        executor["container"]["image"]
        for executor in vertex_spec["deploymentSpec"]["executors"].values()
        if "container" in executor
    ]
    ours = [image for image in images if image.startswith(DEFAULT_REGISTRY)]
    assert len(ours) >= 4
    assert all(image.endswith(f":{__version__}") for image in ours), ours
    others = set(images) - set(ours)
    assert all("google-cloud-pipeline-components" in image for image in others), others


def test_display_names_read_well(vertex_spec):
    names = set(tasks_by_display_name(vertex_spec))
    assert {
        "Import model",
        "Import tests",
        "Deploy & test model",
        "Label run",
        "Create endpoint",
        "Deploy model",
        "Test model performance",
        "Gate on SLOs",
        "Clean up",
    } <= names


def dag_shape(spec: dict) -> dict:
    """Task names, dependencies, triggers and exit handlers of every DAG; executors left out."""
    dags = {"root": spec["root"]["dag"]} | {
        name: component["dag"] for name, component in spec["components"].items() if "dag" in component
    }
    return {
        name: {
            task_name: (
                sorted(task.get("dependentTasks", [])),
                task.get("triggerPolicy"),
                task["taskInfo"]["name"],
                task["componentRef"]["name"],
            )
            for task_name, task in dag["tasks"].items()
        }
        for name, dag in dags.items()
    }


def test_local_flavour_has_the_same_dag(tmp_path, vertex_spec):
    path = tmp_path / "local.yaml"
    compiler.Compiler().compile(build_pipeline(endpoint_create, model_deploy), str(path))
    local_spec = yaml.safe_load(path.read_text())
    assert dag_shape(local_spec) == dag_shape(vertex_spec)
    differing = {
        name
        for name, executor in vertex_spec["deploymentSpec"]["executors"].items()
        if executor != local_spec["deploymentSpec"]["executors"][name]
    }
    assert differing == {"exec-endpoint-create", "exec-model-deploy"}


def run_demo(tmp_path: Path, *flags: str) -> tuple[int, str, str]:
    """Runs ``vertex-loadtest demo``; returns its exit code, stdout, and stdout with stderr."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vertex_loadtest.cli",
            "demo",
            "--output-dir",
            str(tmp_path),
            "--run-time",
            "5s",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.returncode, result.stdout, result.stdout + result.stderr


def endpoints_left(stdout: str) -> int:
    lines = stdout.strip().splitlines()
    match = re.fullmatch(r"endpoints left: (\d+)", lines[-1])
    assert match, f"the demo must end with 'endpoints left: N', not {lines[-1]!r}"
    return int(match.group(1))


@pytest.mark.slow
def test_rehearsal_passes_and_leaves_no_endpoint(tmp_path):
    code, stdout, output = run_demo(tmp_path)
    assert code == 0, output[-3000:]
    assert "Latency gate: ✅ PASSED" in stdout
    # One screen: a line per task, the verdict, the paths; kfp.local's executor logs go to demo.log.
    assert len(output.splitlines()) < 40, output
    assert re.search(r"^  locust-load-test +ok \(\d+\.\ds\)$", stdout, re.MULTILINE), stdout
    assert "Executing task" not in output and "Executing task" in (tmp_path / "demo.log").read_text()
    assert endpoints_left(stdout) == 0
    reports = list(tmp_path.glob("pipeline-root/*/locust-load-test/report"))
    assert reports and "<html" in reports[0].read_text().lower()
    assert list(tmp_path.glob("pipeline-root/*/latency-gate*/verdict"))


@pytest.mark.slow
def test_rehearsal_gate_fails_and_the_cleanup_still_runs(tmp_path):
    code, stdout, output = run_demo(tmp_path, "--slo", "p95 < 1ms")
    assert code == 1, output[-3000:]
    assert "Latency gate: ❌ FAILED" in stdout and "p95 < 1ms" in stdout
    assert endpoints_left(stdout) == 0
    assert list(tmp_path.glob("pipeline-root/*/endpoint-cleanup/report"))


@pytest.mark.slow
def test_rehearsal_deploy_fails_and_the_cleanup_still_runs(tmp_path):
    code, stdout, output = run_demo(tmp_path, "--fail-deploy")
    assert code == 1, output[-3000:]
    assert re.search(
        r"^  model-deploy +FAILED .*\n +\S+Error: .*Injected by --fail-deploy", stdout, re.MULTILINE
    )
    assert endpoints_left(stdout) == 0
    assert not list(tmp_path.glob("pipeline-root/*/locust-load-test/report")), "the load test must not run"


@pytest.mark.slow
def test_rehearsal_keeps_the_endpoint_on_success_when_asked(tmp_path):
    code, stdout, output = run_demo(tmp_path, "--keep-on-success", "--verbose")
    assert code == 0, output[-3000:]
    assert "Executing task" in stdout, "--verbose shows kfp.local's own log"
    assert endpoints_left(stdout) == 1
