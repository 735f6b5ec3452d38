"""The cleanup against the real Vertex AI's documented behaviour, played by the emulator (issue 11).

Each behaviour alone, then all together, through the real aiplatform_v1 REST clients. Every scenario
ends with 0 owned endpoints left and 0 foreign endpoints touched. Deploys last minutes of simulated
time; ``time_scale`` makes a simulated second take 10 ms. Run with ``-s`` for the ``FAULT-MATRIX``
lines (the all-together scenario also prints its wall time).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cleanup_world import OTHER_RUN_LABEL, PROJECT, RUN_LABEL, World
from vertex_loadtest.endpoint_cleanup.report import CleanupReport, EndpointResult
from vertex_loadtest.rehearsal.vertex_emulator import VertexEmulator

TIME_SCALE = 0.01  # a simulated second takes 10 ms: a 15-minute deploy takes 9 s
PROJECT_NUMBER = "123456789012"
FIVE_MINUTES = 300.0
FIFTEEN_MINUTES = 900.0


@pytest.fixture
def world() -> Iterator[World]:
    with VertexEmulator(time_scale=TIME_SCALE) as emulator:
        yield World(emulator)


def foreign_endpoints(world: World) -> list[str]:
    """Look-alikes the cleanup must never touch: another run's label, no label, another team's."""
    return [
        world.endpoint(OTHER_RUN_LABEL, models=1),
        world.endpoint({}, models=1),
        world.endpoint({"team": "serving"}, models=0),
    ]


def start_long_deploy(world: World, endpoint: str, simulated_seconds: float) -> Any:
    """A deploy that is still running when the cleanup starts (the run was stopped in "Deploy model")."""
    world.emulator.set_operation_seconds(simulated_seconds, "deployModel")
    operation = world.endpoints.deploy_model(
        endpoint=endpoint,
        deployed_model={"model": world.model(), "automatic_resources": {"min_replica_count": 1}},
    )
    assert not operation.done()
    return operation


def only(report: CleanupReport) -> EndpointResult:
    [result] = [e for e in report.endpoints if e.action != "skipped"]
    return result


def assert_clean(
    world: World,
    report: CleanupReport,
    scenario: str,
    foreign: list[str],
    owned: dict[str, str] = RUN_LABEL,
) -> None:
    assert report.exit_code == 0, report.to_json()
    assert world.figures(scenario, foreign, owned) == (0, 0)
    assert set(foreign) <= set(world.emulator.endpoints())


@pytest.mark.parametrize("refusal", ["", "unimplemented", "not-cancellable"])
def test_long_deploy_in_flight_cancelled_or_waited_out(world: World, refusal: str) -> None:
    owned = world.endpoint(RUN_LABEL, models=1)
    foreign = foreign_endpoints(world)
    deploy = start_long_deploy(world, owned, FIVE_MINUTES)
    if refusal:
        world.emulator.refuse_cancel(refusal)
    report = world.run()
    result = only(report)
    [waited] = result.waited
    assert deploy.operation.name.rsplit("/", 1)[-1] in waited
    if refusal:
        # The deploy ran to its end, so its model was deployed, then undeployed with the first one.
        assert not result.cancelled_operations and len(result.models_undeployed) == 2
        status = "UNIMPLEMENTED" if refusal == "unimplemented" else "FAILED_PRECONDITION"
        assert f"cancel refused ({status}" in waited and "ended after" in waited
    else:
        assert result.cancelled_operations == [deploy.operation.name]
        assert "(cancelled): ended cancelled" in waited and len(result.models_undeployed) == 1
    assert_clean(world, report, f"5-min deploy in flight, cancel {refusal or 'allowed'}", foreign)


def test_long_deploy_waited_out_when_asked_not_to_cancel(world: World) -> None:
    owned = world.endpoint(RUN_LABEL, models=1)
    foreign = foreign_endpoints(world)
    start_long_deploy(world, owned, FIVE_MINUTES)
    report = world.run(in_flight="wait")
    result = only(report)
    assert not result.cancelled_operations and len(result.models_undeployed) == 2
    assert "(not cancelled): ended after" in result.waited[0]
    assert_clean(world, report, "5-min deploy in flight, in_flight=wait", foreign)


@pytest.mark.parametrize(
    ("http_code", "status"),
    [(404, "NOT_FOUND"), (403, "PERMISSION_DENIED"), (501, "UNIMPLEMENTED"), (503, "UNAVAILABLE")],
)
def test_operations_not_listable_is_not_endpoint_gone(world: World, http_code: int, status: str) -> None:
    """Issue 11, behaviour 2: a NotFound from ListOperations used to loop every pass and leave all."""
    owned = world.endpoint(RUN_LABEL, models=1)
    foreign = foreign_endpoints(world)
    start_long_deploy(world, owned, FIVE_MINUTES)
    world.emulator.refuse_operations_listing(http_code)
    report = world.run(deadline_seconds=30)
    result = only(report)
    assert result.action == "deleted" and len(result.models_undeployed) == 2  # the late deploy too
    assert any(f"cannot list operations ({status}" in e for e in result.errors)
    [waited] = result.waited
    assert waited.startswith("endpoint busy (FAILED_PRECONDITION") and f"not listable ({status}" in waited
    assert_clean(world, report, f"5-min deploy in flight, ListOperations answers {http_code}", foreign)


def test_every_page_of_operations_is_read(world: World) -> None:
    owned = world.endpoint(RUN_LABEL, models=2, traffic=[50, 50])
    foreign = foreign_endpoints(world)
    deploy = start_long_deploy(world, owned, FIVE_MINUTES)
    world.emulator.list_page_size = 1  # the deploy in flight is on the 4th page, after 3 finished ones
    report = world.run()
    assert only(report).cancelled_operations == [deploy.operation.name]
    listings = [r for r in world.emulator.requests[world._mark :] if r[2] == "listOperations"]
    assert len(listings) >= 4
    assert_clean(world, report, "operations listed one per page", foreign)


def test_project_number_in_names_and_an_endpoint_named_twice() -> None:
    with VertexEmulator(time_scale=TIME_SCALE, project_number=PROJECT_NUMBER) as emulator:
        world = World(emulator)
        owned = world.endpoint(RUN_LABEL, models=1)
        foreign = foreign_endpoints(world)
        assert owned.startswith(f"projects/{PROJECT_NUMBER}/")
        by_id = owned.replace(PROJECT_NUMBER, PROJECT)
        report = world.run(endpoints=[by_id])  # named explicitly (by project id) and found by label
        [result] = report.endpoints
        assert result.explicit and result.action == "deleted"
        assert_clean(world, report, "project number in names, endpoint named and labelled", foreign)


def test_misread_filter_never_means_nothing_to_clean(world: World) -> None:
    owned = [world.endpoint(RUN_LABEL, models=1) for _ in range(3)]
    ours = world.model(RUN_LABEL)
    theirs = world.model(OTHER_RUN_LABEL)
    foreign = foreign_endpoints(world)
    world.emulator.misread_filters()
    world.emulator.list_page_size = 2
    report = world.run(delete_models=True)
    assert sorted(e.name for e in report.endpoints) == sorted(owned)
    assert [(m.name, m.action) for m in report.models] == [(ours, "deleted")]
    assert theirs in world.emulator.models()
    assert any("unfiltered listing" in note for note in report.notes)
    assert_clean(world, report, "filter misread, listings paged by 2", foreign)


def test_model_deletion_retried_while_the_service_still_counts_the_undeploy(world: World) -> None:
    owned = world.endpoint(RUN_LABEL, models=0)
    ours = world.model(RUN_LABEL)
    world.endpoints.deploy_model(
        endpoint=owned, deployed_model={"model": ours, "automatic_resources": {"min_replica_count": 1}}
    ).result(timeout=10)
    foreign = foreign_endpoints(world)
    world.emulator.model_delete_blocked_seconds = 150.0  # 1.5 s at this time scale
    report = world.run(delete_models=True)
    [model] = report.models
    assert (model.name, model.action) == (ours, "deleted"), model
    assert "after retrying" in model.reason and "FAILED_PRECONDITION" in model.errors[0]
    assert ours not in world.emulator.models()
    assert_clean(world, report, "model delete refused for 150 s after undeploy", foreign)


def test_undeploy_failing_inside_its_operation_moves_the_traffic_and_retries(world: World) -> None:
    owned = world.endpoint(RUN_LABEL, models=2, traffic=[100, 0])
    foreign = foreign_endpoints(world)
    world.emulator.set_operation_seconds(20.0, "undeployModel")
    deployed = [d["id"] for d in world.emulator.endpoints()[owned]["deployedModels"]]
    moved: list[bool] = []

    def someone_moves_traffic(emulator: VertexEmulator, request: dict[str, Any]) -> None:
        # While the first undeploy (of the model without traffic) runs, traffic lands on it.
        if request["status"] == 200 and not moved:
            moved.append(True)
            world.endpoints.update_endpoint(
                endpoint={"name": owned, "traffic_split": {deployed[0]: 50, deployed[1]: 50}},
                update_mask={"paths": ["traffic_split"]},
            )

    world.emulator.on_request("undeployModel", someone_moves_traffic)
    report = world.run()
    result = only(report)
    assert moved and len(result.models_undeployed) == 2
    assert any("moving its traffic off" in e for e in result.errors)
    assert_clean(world, report, "undeploy fails in its operation (traffic)", foreign)


def test_international_labels(world: World) -> None:
    team = {"équipe": "données-ml"}
    owned = world.endpoint(team, models=1)
    foreign = [*foreign_endpoints(world), world.endpoint({"équipe": "autre"}, models=1)]
    report = world.run(run_name="", labels=team)
    assert [e.name for e in report.endpoints] == [owned]
    assert_clean(world, report, "international label keys and values", foreign, team)


def test_all_together_fifteen_minute_gpu_deploy() -> None:
    """Everything at once: 15-minute deploy, no listing, no cancel, project numbers, misread filters,
    one item per page, models blocked after their undeploy, two ownership labels (one international)."""
    team = {"équipe": "données"}
    with VertexEmulator(time_scale=TIME_SCALE, project_number=PROJECT_NUMBER) as emulator:
        world = World(emulator)
        owned = [
            world.endpoint(RUN_LABEL | team, models=2, traffic=[70, 30]),
            world.endpoint(RUN_LABEL | team),
        ]
        ours = world.model(RUN_LABEL | team)
        # Listed by the one-term server filter (the run label), refused by the client-side check:
        foreign = [*foreign_endpoints(world), world.endpoint(RUN_LABEL, models=1)]
        start_long_deploy(world, owned[1], FIFTEEN_MINUTES)
        emulator.refuse_operations_listing(404)
        emulator.refuse_cancel("unimplemented")
        emulator.misread_filters()
        emulator.list_page_size = 1
        emulator.model_delete_blocked_seconds = 120.0
        started = time.monotonic()
        report = world.run(
            endpoints=[owned[0].replace(PROJECT_NUMBER, PROJECT)],
            labels=team,
            delete_models=True,
            poll_max_seconds=0.5,
        )
        wall = time.monotonic() - started
        assert sorted(e.name for e in report.endpoints) == sorted(owned)
        assert all(e.action == "deleted" for e in report.endpoints)
        assert [(m.name, m.action) for m in report.models] == [(ours, "deleted")]
        waited = next(e for e in report.endpoints if e.name == owned[1]).waited
        assert waited and "endpoint busy" in waited[0]
        print(
            "FAULT-MATRIX all together: 15-simulated-minute deploy "
            f"({FIFTEEN_MINUTES * TIME_SCALE:.0f} s real) waited out in {wall:.1f} s wall; {waited[0]}"
        )
        assert_clean(world, report, "all together", foreign, RUN_LABEL | team)
