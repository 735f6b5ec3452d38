"""EndpointCleanupOp as a dsl.ExitHandler exit task under kfp.local, against the Vertex emulator.

The body creates a labelled endpoint with a model deployed (a tiny lightweight component using
aiplatform_v1 against the emulator URL), then succeeds or fails; the exit task must leave zero
owned endpoints and never touch the foreign ones created beside them.
"""

import json
import tempfile
from pathlib import Path

import pytest
from kfp import dsl, local

from tests.cleanup_world import OTHER_RUN_LABEL, World
from vertex_loadtest import EndpointCleanupOp
from vertex_loadtest.labels import RUN_LABEL_KEY
from vertex_loadtest.rehearsal.vertex_emulator import VertexEmulator

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning"),
]


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def create_and_deploy(api_endpoint: str, run_name: str, fail: bool, deploy_in_flight: bool = False) -> str:
    """Creates an endpoint labelled with the run and deploys a model; fails afterwards when asked.

    With ``deploy_in_flight`` it fails while the deploy still runs (the run stopped in "Deploy model").
    """
    from google.cloud import aiplatform_v1

    from vertex_loadtest.labels import run_labels
    from vertex_loadtest.vertex_clients import client_kwargs

    parent = "projects/test-project/locations/us-central1"
    kwargs = client_kwargs(api_endpoint)
    endpoints = aiplatform_v1.EndpointServiceClient(**kwargs)
    models = aiplatform_v1.ModelServiceClient(**kwargs)
    model = (
        models.upload_model(
            parent=parent,
            model={"display_name": "m", "labels": run_labels(run_name), "container_spec": {"image_uri": "x"}},
        )
        .result(timeout=30)
        .model
    )
    endpoint = endpoints.create_endpoint(
        parent=parent, endpoint={"display_name": "loadtest-endpoint", "labels": run_labels(run_name)}
    ).result(timeout=30)
    resources = {"machine_spec": {"machine_type": "n1-standard-4"}, "min_replica_count": 1}
    deploy = endpoints.deploy_model(
        endpoint=endpoint.name,
        deployed_model={"model": model, "dedicated_resources": resources},
        traffic_split={"0": 100},
    )
    if deploy_in_flight:
        raise RuntimeError("the run stopped while the deploy was still running (on purpose)")
    deploy.result(timeout=30)
    if fail:
        raise RuntimeError("the load test failed (on purpose)")
    return endpoint.name


def run_pipeline(
    emulator: VertexEmulator,
    tmp_path: Path,
    fail: bool,
    raise_on_error: bool = False,
    deploy_in_flight: bool = False,
    **cleanup_args: object,
) -> dict:
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path),
        raise_on_error=raise_on_error,
    )

    @dsl.pipeline(name="cleanup-exit-handler")
    def pipeline(api_endpoint: str, fail: bool, deploy_in_flight: bool) -> None:
        cleanup = EndpointCleanupOp(
            project="test-project",
            location="us-central1",
            api_endpoint=api_endpoint,
            delete_models=True,
            **cleanup_args,
        )
        with dsl.ExitHandler(cleanup):
            create_and_deploy(
                api_endpoint=api_endpoint,
                run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                fail=fail,
                deploy_in_flight=deploy_in_flight,
            )

    try:
        pipeline(api_endpoint=emulator.api_endpoint, fail=fail, deploy_in_flight=deploy_in_flight)
    finally:
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path))
    reports = sorted(tmp_path.rglob("report.json"))
    assert reports, "the exit task wrote no JSON report"
    return json.loads(reports[-1].read_text())


@pytest.mark.parametrize("fail", [True, False], ids=["body-fails", "body-succeeds"])
def test_exit_task_leaves_no_owned_endpoint(
    vertex_emulator: VertexEmulator, tmp_path: Path, fail: bool
) -> None:
    world = World(vertex_emulator)
    foreign = [
        world.endpoint(OTHER_RUN_LABEL, display_name="loadtest-endpoint"),
        world.endpoint({}, display_name="loadtest-endpoint"),
    ]
    foreign_model = world.model(OTHER_RUN_LABEL)
    world._mark = len(vertex_emulator.requests)

    report = run_pipeline(vertex_emulator, tmp_path, fail)

    assert report["run_state"] == ("FAILED" if fail else "SUCCEEDED")
    assert report["ok"] and report["exit_code"] == 0
    assert [e["action"] for e in report["endpoints"]] == ["deleted"]
    assert len(report["endpoints"][0]["models_undeployed"]) == 1
    assert [m["action"] for m in report["models"]] == ["deleted"]
    run_label = report["ownership_labels"][RUN_LABEL_KEY]
    leaked = world.leaked({RUN_LABEL_KEY: run_label})
    touched = world.touched(foreign)
    print(
        f"FAULT-MATRIX kfp.local exit handler, body {'fails' if fail else 'succeeds'}: "
        f"endpoints leaked={leaked} foreign touched={touched}"
    )
    assert leaked == 0 and touched == 0
    assert sorted(vertex_emulator.endpoints()) == sorted(foreign)
    assert foreign_model in vertex_emulator.models()


def test_keep_on_success_keeps_the_endpoint(vertex_emulator: VertexEmulator, tmp_path: Path) -> None:
    report = run_pipeline(vertex_emulator, tmp_path, fail=False, keep_on_success=True)
    assert [e["action"] for e in report["endpoints"]] == ["kept"]
    assert len(vertex_emulator.endpoints()) == 1


def test_exit_task_fails_the_run_naming_what_remains(vertex_emulator: VertexEmulator, tmp_path: Path) -> None:
    """The body succeeds but the endpoint cannot be deleted: the exit task, and so the run, fails."""
    vertex_emulator.fail_operations("deleteEndpoint", 99, status="PERMISSION_DENIED", message="not allowed")
    with pytest.raises(RuntimeError, match="endpoint-cleanup"):
        run_pipeline(vertex_emulator, tmp_path, fail=False, raise_on_error=True, deadline_seconds=20)
    report = json.loads(sorted(tmp_path.rglob("report.json"))[-1].read_text())
    [leftover] = report["remaining"]
    assert report["exit_code"] == 1 and leftover in vertex_emulator.endpoints()
    assert any("gcloud ai endpoints delete" in c for c in report["endpoints"][0]["remove_commands"])
    markdown = next(p for p in tmp_path.rglob("report") if p.is_file()).read_text()
    assert "FAILED" in markdown and leftover.rsplit("/", 1)[-1] in markdown


def test_run_stopped_during_a_fifteen_minute_gpu_deploy() -> None:
    """The body fails while a 15-minute deploy runs (cancel refused): the exit task waits it out."""
    with VertexEmulator(time_scale=0.01, project_number="123456789012") as emulator:
        emulator.set_operation_seconds(900.0, "deployModel")  # 9 s at this time scale
        emulator.refuse_cancel("unimplemented")
        world = World(emulator)
        foreign = [world.endpoint(OTHER_RUN_LABEL, display_name="loadtest-endpoint")]
        world._mark = len(emulator.requests)
        with tempfile.TemporaryDirectory() as root:
            report = run_pipeline(emulator, Path(root), fail=True, deploy_in_flight=True)
        assert report["run_state"] == "FAILED" and report["exit_code"] == 0
        [endpoint] = report["endpoints"]
        assert endpoint["action"] == "deleted" and len(endpoint["models_undeployed"]) == 1
        assert "cancel refused (UNIMPLEMENTED" in endpoint["waited"][0]
        leaked = world.leaked({RUN_LABEL_KEY: report["ownership_labels"][RUN_LABEL_KEY]})
        touched = world.touched(foreign)
        print(
            "FAULT-MATRIX kfp.local exit handler, body fails during a 15-simulated-minute deploy: "
            f"endpoints leaked={leaked} foreign touched={touched}; {endpoint['waited'][0]}"
        )
        assert leaked == 0 and touched == 0
        assert sorted(emulator.endpoints()) == sorted(foreign)
