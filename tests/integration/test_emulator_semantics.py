"""The emulator's documented semantics and its knobs for the real service's harsher behaviour, through the
real aiplatform_v1 REST clients (raw HTTP only where the clients cannot send the request)."""

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from google.api_core import exceptions

from vertex_loadtest.rehearsal.prediction_server import PredictionServer
from vertex_loadtest.rehearsal.vertex_calls import deploy_local_model, upload_model
from vertex_loadtest.rehearsal.vertex_emulator import VertexEmulator
from vertex_loadtest.vertex_clients import VertexClients

PARENT = "projects/my-project/locations/us-central1"
MACHINE = {"machine_spec": {"machine_type": "n1-standard-4"}, "min_replica_count": 1, "max_replica_count": 1}


def status_of(error: exceptions.GoogleAPICallError) -> dict[str, Any]:
    """The google.rpc.Status of an error answer (and nothing else in the body)."""
    body = error.response.json()
    assert set(body) == {"error"} and set(body["error"]) <= {"code", "message", "status", "details"}
    return dict(body["error"])


def raw(emulator: VertexEmulator, method: str, path: str, body: Any = None) -> tuple[int, Any, Any]:
    """(HTTP status, JSON body, headers) of a request the clients cannot make."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{emulator.api_endpoint}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"{}"), answer.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers


def create(clients: VertexClients, endpoint_id: str = "", **labels: str) -> str:
    endpoint = {"display_name": "e", "labels": labels}
    return str(
        clients.endpoints.create_endpoint(parent=PARENT, endpoint=endpoint, endpoint_id=endpoint_id)
        .result(timeout=10)
        .name
    )


def deploy(clients: VertexClients, endpoint: str, model: str, split: dict[str, int]) -> str:
    operation = clients.endpoints.deploy_model(
        endpoint=endpoint,
        deployed_model={"model": model, "dedicated_resources": MACHINE},
        traffic_split=split,
    )
    return str(operation.result(timeout=10).deployed_model.id)


@pytest.fixture
def clients(vertex_emulator: VertexEmulator) -> VertexClients:
    return VertexClients(vertex_emulator.api_endpoint)


@pytest.fixture
def model(clients: VertexClients, prediction_server: PredictionServer) -> str:
    return upload_model(clients, PARENT, display_name="m", model_url=prediction_server.url).name


def test_time_scale_stretches_simulated_minutes_into_real_seconds(
    prediction_server: PredictionServer,
) -> None:
    with VertexEmulator(time_scale=0.01) as emulator:
        clients = VertexClients(emulator.api_endpoint)
        model = upload_model(clients, PARENT, display_name="m", model_url=prediction_server.url).name
        endpoint = create(clients)
        emulator.set_operation_seconds(60, "deployModel")  # a minute of simulated time: 0.6 s
        started = time.monotonic()
        operation = clients.endpoints.deploy_model(
            endpoint=endpoint, deployed_model={"model": model, "dedicated_resources": MACHINE}
        )
        name = operation.operation.name
        assert not clients.endpoints.get_operation(request={"name": name}).done
        for _ in range(30):  # :wait answers as soon as the operation ends (at most 1 s each)
            if clients.endpoints.wait_operation(request={"name": name, "timeout": {"seconds": 1}}).done:
                break
        assert time.monotonic() - started >= 0.6
        assert clients.endpoints.get_endpoint(name=endpoint).deployed_models


def test_names_carry_the_project_number_and_both_forms_address_them() -> None:
    with VertexEmulator(project_number="123456789012") as emulator:
        clients = VertexClients(emulator.api_endpoint)
        name = create(clients, "42", team="ml")
        assert name == "projects/123456789012/locations/us-central1/endpoints/42"
        assert clients.endpoints.get_endpoint(name=f"{PARENT}/endpoints/42").name == name
        assert [e.name for e in clients.endpoints.list_endpoints(parent=PARENT)] == [name]
        assert list(emulator.endpoints()) == [name]
        clients.endpoints.delete_endpoint(name=f"{PARENT}/endpoints/42").result(timeout=10)
        assert not emulator.endpoints()


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (404, exceptions.NotFound),
        (403, exceptions.Forbidden),
        (501, exceptions.MethodNotImplemented),
        (503, exceptions.ServiceUnavailable),
    ],
)
def test_operations_listing_can_be_refused(
    vertex_emulator: VertexEmulator, clients: VertexClients, model: str, code: int, error: type[Exception]
) -> None:
    endpoint = create(clients)
    vertex_emulator.refuse_operations_listing(code)
    with pytest.raises(error) as refused:
        clients.endpoints.list_operations(request={"name": endpoint})
    assert status_of(refused.value)["code"] == code  # type: ignore[arg-type]
    assert clients.endpoints.get_endpoint(name=endpoint).name == endpoint  # the endpoint itself answers
    assert clients.models.list_operations(request={"name": model}).operations  # only under endpoints


@pytest.mark.parametrize(
    ("mode", "error", "status"),
    [
        ("unimplemented", exceptions.MethodNotImplemented, "UNIMPLEMENTED"),
        ("not-cancellable", exceptions.BadRequest, "FAILED_PRECONDITION"),
    ],
)
def test_cancel_can_be_refused(
    vertex_emulator: VertexEmulator,
    clients: VertexClients,
    model: str,
    mode: str,
    error: type[Exception],
    status: str,
) -> None:
    endpoint = create(clients)
    vertex_emulator.set_operation_seconds(30, "deployModel")
    operation = clients.endpoints.deploy_model(
        endpoint=endpoint, deployed_model={"model": model, "dedicated_resources": MACHINE}
    )
    vertex_emulator.refuse_cancel(mode)
    with pytest.raises(error) as refused:
        clients.endpoints.cancel_operation(request={"name": operation.operation.name})
    assert status_of(refused.value)["status"] == status  # type: ignore[arg-type]
    assert not clients.endpoints.get_operation(request={"name": operation.operation.name}).done
    vertex_emulator.refuse_cancel("")
    clients.endpoints.cancel_operation(request={"name": operation.operation.name})
    assert clients.endpoints.get_operation(request={"name": operation.operation.name}).error.code == 1


def test_misread_filters_match_nothing_but_documented_forms(
    vertex_emulator: VertexEmulator, clients: VertexClients
) -> None:
    ours = create(clients, **{"vertex-loadtest-run": "r1", "team": "ml"})

    def names(filter_: str) -> list[str]:
        return [
            e.name for e in clients.endpoints.list_endpoints(request={"parent": PARENT, "filter": filter_})
        ]

    assert names('labels.vertex-loadtest-run="r1"') == [ours]
    vertex_emulator.misread_filters()
    assert names('labels.vertex-loadtest-run="r1"') == []  # a dashed key: not a documented form
    assert names('labels.team="ml" AND labels.team:*') == []  # AND: not documented for endpoints.list
    assert names('labels.team!="x"') == []
    assert names('labels.team="ml"') == names("labels.team:*") == names("labels:team") == [ours]
    assert names("") == [ours]


def test_lists_are_paged_and_a_bad_page_token_is_a_400(
    vertex_emulator: VertexEmulator, clients: VertexClients, model: str
) -> None:
    vertex_emulator.list_page_size = 2
    for _ in range(5):
        create(clients)
    first = clients.endpoints.list_endpoints(request={"parent": PARENT, "page_size": 100})
    page = next(iter(first.pages))
    assert len(page.endpoints) == 2 and page.next_page_token
    assert len({e.name for e in first}) == 5
    with pytest.raises(exceptions.BadRequest) as bad:
        clients.endpoints.list_endpoints(request={"parent": PARENT, "page_token": "garbage"})
    assert status_of(bad.value)["status"] == "INVALID_ARGUMENT"
    status, body, _ = raw(vertex_emulator, "GET", f"/v1/{PARENT}/endpoints?pageToken=123")
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"


def test_operations_are_listed_per_exact_endpoint_and_paged(
    vertex_emulator: VertexEmulator, clients: VertexClients, model: str
) -> None:
    one, twelve = create(clients, "1"), create(clients, "12")
    for _ in range(2):
        deploy(clients, twelve, model, {})
    vertex_emulator.list_page_size = 2

    def operations(name: str) -> list[str]:
        pages = clients.endpoints.list_operations(request={"name": name}).operations
        return [op.name for op in pages]

    assert all(name.startswith(one + "/operations/") for name in operations(one))
    assert len(operations(one)) == 1  # its create, not endpoints/12's
    first = clients.endpoints.list_operations(request={"name": twelve})
    assert len(first.operations) == 2 and first.next_page_token
    rest = clients.endpoints.list_operations(request={"name": twelve, "page_token": first.next_page_token})
    assert len(rest.operations) == 1 and not rest.next_page_token


def test_model_delete_is_blocked_for_a_while_after_its_undeploy(
    vertex_emulator: VertexEmulator, clients: VertexClients, model: str
) -> None:
    endpoint = create(clients)
    deployed = deploy(clients, endpoint, model, {"0": 100})
    vertex_emulator.time_scale = 0.01
    vertex_emulator.model_delete_blocked_seconds = 50  # 0.5 s
    clients.endpoints.undeploy_model(endpoint=endpoint, deployed_model_id=deployed).result(timeout=10)
    with pytest.raises(exceptions.BadRequest) as blocked:
        clients.models.delete_model(name=model)
    assert status_of(blocked.value)["status"] == "FAILED_PRECONDITION"
    time.sleep(0.6)
    clients.models.delete_model(name=model).result(timeout=10)
    assert not vertex_emulator.models()


def test_undeploy_leaving_traffic_fails_inside_the_operation(
    vertex_emulator: VertexEmulator, clients: VertexClients, model: str
) -> None:
    endpoint = create(clients)
    first = deploy(clients, endpoint, model, {"0": 100})
    second = deploy(clients, endpoint, model, {"0": 50, first: 50})
    operation = clients.endpoints.undeploy_model(endpoint=endpoint, deployed_model_id=first)  # accepted
    with pytest.raises(exceptions.GoogleAPICallError):
        operation.result(timeout=10)
    assert operation.operation.error.code == 9  # FAILED_PRECONDITION
    assert len(clients.endpoints.get_endpoint(name=endpoint).deployed_models) == 2
    clients.endpoints.undeploy_model(
        endpoint=endpoint, deployed_model_id=first, traffic_split={second: 100}
    ).result(timeout=10)
    assert clients.endpoints.get_endpoint(name=endpoint).traffic_split == {second: 100}


def test_traffic_split_as_documented(
    vertex_emulator: VertexEmulator, clients: VertexClients, model: str
) -> None:
    endpoint = create(clients)
    first = deploy(clients, endpoint, model, {"0": 100})
    second = deploy(clients, endpoint, model, {"0": 100})  # the first model is not named: no traffic
    assert clients.endpoints.get_endpoint(name=endpoint).traffic_split == {second: 100}
    for split in ({first: 60, second: 60}, {"42": 100}, {first: 101}):
        with pytest.raises(exceptions.BadRequest) as bad:
            clients.endpoints.update_endpoint(
                endpoint={"name": endpoint, "traffic_split": split}, update_mask={"paths": ["traffic_split"]}
            )
        assert status_of(bad.value)["status"] == "INVALID_ARGUMENT"
    updated = clients.endpoints.update_endpoint(
        endpoint={"name": endpoint, "traffic_split": {}}, update_mask={"paths": ["traffic_split"]}
    )
    assert not updated.traffic_split and len(updated.deployed_models) == 2  # empty: no traffic at all
    status, body, _ = raw(vertex_emulator, "PATCH", f"/v1/{endpoint}", {"description": "no mask"})
    assert status == 400 and "update_mask" in body["error"]["message"]


def test_wait_reads_its_timeout_from_the_query(
    vertex_emulator: VertexEmulator, clients: VertexClients, model: str
) -> None:
    endpoint = create(clients)
    vertex_emulator.set_operation_seconds(60, "deployModel")
    operation = clients.endpoints.deploy_model(
        endpoint=endpoint, deployed_model={"model": model, "dedicated_resources": MACHINE}
    )
    started = time.monotonic()
    waited = clients.endpoints.wait_operation(
        request={"name": operation.operation.name, "timeout": {"nanos": 1}}
    )
    assert not waited.done and time.monotonic() - started < 5  # not the 10 s default


def test_predict_is_post_only_needs_instances_and_raw_predict_names_who_answered(
    vertex_emulator: VertexEmulator, prediction_server: PredictionServer
) -> None:
    deployed = deploy_local_model(
        vertex_emulator.api_endpoint, project="p", location="l", model_url=prediction_server.url
    )
    path = f"/v1/{deployed['endpoint']}"
    status, body, _ = raw(vertex_emulator, "GET", f"{path}:predict")
    assert status >= 400 and set(body) == {"error"}
    status, body, _ = raw(vertex_emulator, "POST", f"{path}:predict", {"parameters": {}})
    assert status == 400 and "instances" in body["error"]["message"]
    status, body, headers = raw(vertex_emulator, "POST", f"{path}:rawPredict", {"instances": [[1.0, 2.0]]})
    assert status == 200 and len(body["predictions"]) == 1
    assert headers["X-Vertex-AI-Endpoint-Id"] == deployed["endpoint"].rsplit("/", 1)[-1]
    assert headers["X-Vertex-AI-Deployed-Model-Id"] == deployed["deployed_model_id"]


@pytest.mark.parametrize(
    ("endpoint_id", "accepted"),
    [
        ("123456789", True),
        ("1234567890", False),  # 10 digits
        ("0123", False),  # leading zero
        ("my-endpoint-1", True),
        ("e" * 63, True),
        ("e" * 64, False),
        ("my-endpoint-", False),  # must end with a letter or digit
        ("My-endpoint", False),
    ],
)
def test_endpoint_id_as_documented(clients: VertexClients, endpoint_id: str, accepted: bool) -> None:
    if accepted:
        assert create(clients, endpoint_id).endswith(f"/endpoints/{endpoint_id}")
    else:
        with pytest.raises(exceptions.BadRequest) as bad:
            create(clients, endpoint_id)
        assert status_of(bad.value)["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    ("labels", "accepted"),
    [
        ({"équipe": "données", "機械": "学習"}, True),
        ({f"k{i}": "" for i in range(64)}, True),
        ({f"k{i}": "" for i in range(65)}, False),
        ({"k" * 63: "v" * 63}, True),
        ({"Team": "x"}, False),
        ({"1team": "x"}, False),
        ({"team": "a.b"}, False),
    ],
)
def test_labels_as_documented(clients: VertexClients, labels: dict[str, str], accepted: bool) -> None:
    if accepted:
        assert create(clients, **labels)
    else:
        with pytest.raises(exceptions.BadRequest) as bad:
            create(clients, **labels)
        assert status_of(bad.value)["status"] == "INVALID_ARGUMENT"


def test_the_knobs_over_the_admin_api(vertex_emulator: VertexEmulator, clients: VertexClients) -> None:
    knobs = {"refuseOperationsListing": 403, "refuseCancel": "unimplemented", "misreadFilters": True}
    status, _, _ = raw(
        vertex_emulator, "POST", "/_emulator/faults", {**knobs, "listPageSize": 3, "timeScale": 0.5}
    )
    assert status == 200
    assert (vertex_emulator.list_page_size, vertex_emulator.time_scale) == (3, 0.5)
    endpoint = create(clients, team="ml")
    with pytest.raises(exceptions.Forbidden):
        clients.endpoints.list_operations(request={"name": endpoint})
    assert not list(clients.endpoints.list_endpoints(request={"parent": PARENT, "filter": "labels.team!=x"}))
    status, body, _ = raw(vertex_emulator, "POST", "/_emulator/faults", {"refuseCancel": "sometimes"})
    assert status == 400 and "refuse_cancel" in body["error"]["message"]


def test_every_error_is_a_google_rpc_status(vertex_emulator: VertexEmulator) -> None:
    for method, path in (("PUT", f"/v1/{PARENT}/endpoints"), ("OPTIONS", "/v1/x"), ("GET", "/v2/nothing")):
        status, body, _ = raw(vertex_emulator, method, path)
        assert (
            status >= 400 and set(body) == {"error"} and set(body["error"]) == {"code", "message", "status"}
        )
