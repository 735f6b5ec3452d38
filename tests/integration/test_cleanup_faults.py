"""The cleanup's fault matrix, through the real aiplatform_v1 REST clients against the emulator.

Every scenario ends by counting endpoints leaked (owned endpoints still present: must be 0 unless the
scenario is about reporting a leftover) and foreign endpoints touched (mutating requests addressed to
an endpoint the run does not own: must be 0). Run with ``-s`` to see the ``FAULT-MATRIX`` lines.
"""

import time

import pytest

from tests.cleanup_world import OTHER_RUN_LABEL, PARENT, RUN, RUN_LABEL, World
from vertex_loadtest.endpoint_cleanup.cleanup import run_cleanup
from vertex_loadtest.endpoint_cleanup.report import console_url, render_markdown
from vertex_loadtest.errors import BadInput, CleanupIncomplete
from vertex_loadtest.labels import RUN_LABEL_KEY, sanitize_label_value
from vertex_loadtest.rehearsal.vertex_emulator import VertexEmulator


@pytest.fixture
def world(vertex_emulator: VertexEmulator) -> World:
    return World(vertex_emulator)


def foreign_endpoints(world: World) -> list[str]:
    """Look-alikes the cleanup must never touch: same display name, another run's label, no label."""
    return [
        world.endpoint(OTHER_RUN_LABEL, models=1),
        world.endpoint({}, models=1),
        world.endpoint({"team": "serving"}, models=0),
    ]


def test_one_endpoint_one_model(world: World) -> None:
    owned = world.endpoint(RUN_LABEL, models=1)
    foreign = foreign_endpoints(world)
    report = world.run()
    assert report.exit_code == 0
    [result] = report.endpoints
    assert (result.name, result.action, len(result.models_undeployed)) == (owned, "deleted", 1)
    assert result.deployed_models[0].accelerator_type == "NVIDIA_L4"
    assert result.lifetime_seconds is not None and result.lifetime_seconds >= 0
    assert world.figures("one endpoint, one model", foreign) == (0, 0)


def test_several_endpoints_several_models_with_traffic_split(world: World) -> None:
    world.endpoint(RUN_LABEL, models=3, traffic=[50, 30, 20])
    world.endpoint(RUN_LABEL, models=2, traffic=[10, 90], untracked=1)  # one model without a split entry
    world.endpoint(RUN_LABEL, models=4, traffic=[25, 25, 25, 25])
    foreign = foreign_endpoints(world)
    world.emulator.set_operation_seconds(0.05)
    report = world.run()
    assert report.exit_code == 0, report.to_json()
    assert sorted(len(e.models_undeployed) for e in report.endpoints) == [3, 3, 4]
    assert all(e.action == "deleted" for e in report.endpoints)
    # Every undeploy was accepted on the first try: the order and splits are ones Vertex takes.
    assert not [r for r in world.emulator.requests if r[2] == "undeployModel" and r[3] != 200]
    assert world.figures("3 endpoints x 3-4 models, traffic splits", foreign) == (0, 0)


def test_transient_429_and_503_are_retried(world: World) -> None:
    world.endpoint(RUN_LABEL, models=2, traffic=[60, 40])
    foreign = foreign_endpoints(world)
    world.emulator.fail_requests(429, 2, kind="listEndpoints")
    world.emulator.fail_requests(503, 2, kind="undeployModel")
    world.emulator.fail_requests(503, 1, kind="deleteEndpoint")
    world.emulator.fail_requests(429, 3, kind="getOperation")
    report = world.run()
    assert report.exit_code == 0
    statuses = [r[3] for r in world.emulator.requests]
    assert statuses.count(429) == 5 and statuses.count(503) == 3
    assert world.figures("transient 429/503", foreign) == (0, 0)


def test_failed_operation_is_seen_and_retried(world: World) -> None:
    world.endpoint(RUN_LABEL, models=2, traffic=[50, 50])
    foreign = foreign_endpoints(world)
    world.emulator.fail_operations("undeployModel", 1, status="INTERNAL", message="backend hiccup")
    world.emulator.fail_operations("deleteEndpoint", 1, status="UNAVAILABLE", message="try later")
    report = world.run()
    assert report.exit_code == 0
    [result] = report.endpoints
    assert any("backend hiccup" in e for e in result.errors) and any("try later" in e for e in result.errors)
    assert world.figures("operations that fail once", foreign) == (0, 0)


def test_permanently_failing_delete_fails_naming_what_remains(world: World) -> None:
    owned = world.endpoint(RUN_LABEL, models=1)
    foreign = foreign_endpoints(world)
    world.emulator.fail_operations(
        "deleteEndpoint", 99, status="PERMISSION_DENIED", message="no delete for you"
    )
    report = world.run(max_passes=3)
    assert report.exit_code == 1 and report.remaining == [owned]
    markdown = render_markdown(report)
    endpoint_id = owned.rsplit("/", 1)[-1]
    assert "FAILED" in markdown and console_url(owned) in markdown
    assert f"gcloud ai endpoints delete {endpoint_id} --project=test-project --region=us-central1" in markdown
    with pytest.raises(CleanupIncomplete, match=endpoint_id):
        run_cleanup(world.config(max_passes=1), raise_on_failure=True)
    leaked, touched = world.figures("delete refused by IAM (reported, expected leak)", foreign)
    assert (leaked, touched) == (1, 0)


def test_endpoint_deleted_by_someone_else_midway(world: World) -> None:
    owned = world.endpoint(RUN_LABEL, models=2, traffic=[70, 30])
    foreign = foreign_endpoints(world)
    world.emulator.set_operation_seconds(0.1)

    def delete_it(emulator: VertexEmulator, request: dict) -> None:
        if request["status"] == 200:
            emulator.delete_externally(owned)

    world.emulator.on_request("undeployModel", delete_it)
    report = world.run()
    assert report.exit_code == 0
    [result] = report.endpoints
    assert result.action == "already_gone" and "someone else" in result.reason
    assert world.figures("deleted by someone else mid-way", foreign) == (0, 0)


@pytest.mark.parametrize("in_flight", ["cancel", "wait"])
def test_deploy_still_in_progress(world: World, in_flight: str) -> None:
    owned = world.endpoint(RUN_LABEL, models=1)
    foreign = foreign_endpoints(world)
    world.emulator.set_operation_seconds(30 if in_flight == "cancel" else 0.4, "deployModel")
    deploy = world.endpoints.deploy_model(
        endpoint=owned,
        deployed_model={"model": world.model(), "automatic_resources": {"min_replica_count": 1}},
    )
    assert not deploy.done()
    started = time.monotonic()
    report = world.run(in_flight=in_flight)
    assert report.exit_code == 0
    [result] = report.endpoints
    if in_flight == "cancel":
        assert result.cancelled_operations == [deploy.operation.name]
        assert len(result.models_undeployed) == 1 and time.monotonic() - started < 10
    else:
        assert not result.cancelled_operations and len(result.models_undeployed) == 2
    assert world.figures(f"deploy in flight ({in_flight})", foreign) == (0, 0)


def test_in_flight_deploy_without_permission_to_list_operations(world: World) -> None:
    owned = world.endpoint(RUN_LABEL, models=1)
    foreign = foreign_endpoints(world)
    world.emulator.set_operation_seconds(0.6, "deployModel")
    world.endpoints.deploy_model(
        endpoint=owned,
        deployed_model={"model": world.model(), "automatic_resources": {"min_replica_count": 1}},
    )
    world.emulator.fail_requests(403, 100, kind="listOperations")
    report = world.run()
    assert report.exit_code == 0
    [result] = report.endpoints
    assert len(result.models_undeployed) == 2  # the late deploy was found and undeployed on a later pass
    assert any("PERMISSION_DENIED" in e for e in result.errors)
    assert world.figures("deploy in flight, operations not listable", foreign) == (0, 0)


@pytest.mark.slow
def test_crash_midway_then_rerun_finishes(world: World, tmp_path: object) -> None:
    import subprocess
    import sys

    for _ in range(2):
        world.endpoint(RUN_LABEL, models=3, traffic=[40, 30, 30])
    foreign = foreign_endpoints(world)
    world.emulator.set_operation_seconds(0.5)
    command = [
        sys.executable, "-m", "vertex_loadtest.cli", "cleanup", "--project", "test-project",
        "--location", "us-central1", "--run-name", RUN, "--api-endpoint", world.emulator.api_endpoint,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
            r[2] == "undeployModel" for r in world.emulator.requests
        ):
            time.sleep(0.01)
        time.sleep(0.1)
    finally:
        process.kill()  # a crash: no cleanup of its own, operations left in flight
        process.wait(timeout=10)
    assert world.leaked() == 2, "the crash should leave the job half done"
    report = world.run()
    assert report.exit_code == 0
    assert all(e.action == "deleted" for e in report.endpoints)
    assert world.figures("crash mid-cleanup, then re-run", foreign) == (0, 0)


def test_foreign_endpoints_untouched_and_explicit_ones_refused(world: World) -> None:
    owned = world.endpoint(RUN_LABEL, models=1)
    foreign = foreign_endpoints(world)
    report = world.run(endpoints=[foreign[0], owned])
    assert report.exit_code == 2 and report.refused == [foreign[0]]
    assert sorted(e.name for e in report.endpoints if e.action == "deleted") == [owned]
    assert world.figures("foreign look-alikes + explicit foreign (refused)", foreign) == (0, 0)
    assert set(foreign) <= set(world.emulator.endpoints())

    forced = world.run(endpoints=[foreign[1].rsplit("/", 1)[-1]], force=True, run_name="")
    assert forced.exit_code == 0 and [e.action for e in forced.endpoints] == ["deleted"]
    assert foreign[1] not in world.emulator.endpoints()


def test_dry_run_changes_nothing(world: World) -> None:
    world.endpoint(RUN_LABEL, models=2, traffic=[50, 50])
    foreign = foreign_endpoints(world)
    before = world.emulator.endpoints()
    report = world.run(dry_run=True, delete_models=True)
    assert report.exit_code == 0 and [e.action for e in report.endpoints] == ["would_delete"]
    assert report.endpoints[0].plan[-1] == "delete the endpoint" and len(report.endpoints[0].plan) == 3
    assert world.emulator.endpoints() == before
    changed, touched = world.touched([n for n in before if n not in foreign]), world.touched(foreign)
    print(f"FAULT-MATRIX dry run: owned endpoints changed={changed} foreign touched={touched}")
    assert (changed, touched) == (0, 0)


@pytest.mark.parametrize("state", ["SUCCEEDED", "FAILED"])
def test_keep_on_success(world: World, state: str) -> None:
    owned = world.endpoint(RUN_LABEL, models=1)
    foreign = foreign_endpoints(world)
    report = world.run(keep_on_success=True, run_state=state)
    assert report.exit_code == 0
    action = report.endpoints[0].action
    assert action == ("kept" if state == "SUCCEEDED" else "deleted")
    assert (owned in world.emulator.endpoints()) == (state == "SUCCEEDED")
    assert world.touched(foreign) == 0


def test_sweeper(world: World) -> None:
    stale_finished = world.endpoint({RUN_LABEL_KEY: "old-run-1"}, models=1)
    stale_unknown = world.endpoint({RUN_LABEL_KEY: "old-run-2"}, models=2, traffic=[50, 50])
    stale_running = world.endpoint({RUN_LABEL_KEY: "old-run-still-running"}, models=1)
    current = world.endpoint(RUN_LABEL, models=1)
    unlabelled = world.endpoint({}, models=1)
    world.emulator.set_pipeline_job_state("old-run-1", "PIPELINE_STATE_FAILED")
    world.emulator.set_pipeline_job_state("old-run-still-running", "PIPELINE_STATE_RUNNING")
    time.sleep(1.0)
    young = world.endpoint({RUN_LABEL_KEY: "young-run"}, models=1)
    report = world.run(sweep=True, older_than_seconds=0.9)
    actions = {e.name: e.action for e in report.endpoints}
    assert actions == {
        stale_finished: "deleted",
        stale_unknown: "deleted",
        stale_running: "skipped",
        current: "skipped",
        young: "skipped",
    }
    assert report.exit_code == 0
    assert sorted(world.emulator.endpoints()) == sorted([stale_running, current, unlabelled, young])
    assert world.touched([stale_running, current, unlabelled, young]) == 0
    print("FAULT-MATRIX sweeper: stale swept=2, running/current/young/unlabelled touched=0")


def test_overall_deadline_reports_what_remains(world: World) -> None:
    owned = world.endpoint(RUN_LABEL, models=1)
    world.emulator.set_operation_seconds(10, "undeployModel")
    started = time.monotonic()
    report = world.run(deadline_seconds=1.0)
    assert time.monotonic() - started < 3
    assert report.exit_code == 1 and report.remaining == [owned]
    assert "deadline" in " ".join(report.endpoints[0].errors)


def test_delete_models_removes_only_the_runs_models(world: World) -> None:
    ours = world.model(RUN_LABEL)
    theirs = world.model(OTHER_RUN_LABEL)
    world.endpoint(RUN_LABEL, models=1)
    report = world.run(delete_models=True)
    assert report.exit_code == 0
    assert [(m.name, m.action) for m in report.models] == [(ours, "deleted")]
    assert theirs in world.emulator.models() and ours not in world.emulator.models()


def test_bad_input_is_refused_before_any_call(world: World) -> None:
    with pytest.raises(BadInput, match="nothing identifies"):
        world.run(run_name="")
    with pytest.raises(BadInput, match="label"):
        world.run(labels={"Bad Key": "x"})
    with pytest.raises(BadInput, match="endpoint"):
        world.run(endpoints=["projects/x/endpoints/1"])
    assert world.emulator.requests[world._mark :] == []


def test_run_label_is_the_sanitized_job_name(world: World) -> None:
    assert {RUN_LABEL_KEY: sanitize_label_value(RUN)} == RUN_LABEL
    assert world.config().ownership_labels() == RUN_LABEL
    assert world.config().parent == PARENT
