"""The Vertex AI emulator through the unmodified aiplatform_v1 REST clients: shapes, errors, faults."""

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from vertex_loadtest.rehearsal.prediction_server import PredictionServer
from vertex_loadtest.rehearsal.vertex_calls import MODEL_URL_ENV, deploy_local_model
from vertex_loadtest.rehearsal.vertex_emulator import VertexEmulator
from vertex_loadtest.vertex_clients import client_kwargs

PARENT = "projects/test-project/locations/us-central1"
MACHINE = {"machine_spec": {"machine_type": "n1-standard-4"}, "min_replica_count": 1, "max_replica_count": 1}


def clients(
    emulator: VertexEmulator,
) -> tuple[aiplatform_v1.EndpointServiceClient, aiplatform_v1.ModelServiceClient]:
    kwargs = client_kwargs(emulator.api_endpoint)
    return aiplatform_v1.EndpointServiceClient(**kwargs), aiplatform_v1.ModelServiceClient(**kwargs)


def upload(models: aiplatform_v1.ModelServiceClient, url: str = "") -> str:
    env = [{"name": MODEL_URL_ENV, "value": url}] if url else []
    model = {
        "display_name": "m",
        "container_spec": {"image_uri": "local/m", "env": env, "predict_route": "/p"},
    }
    return models.upload_model(parent=PARENT, model=model).result(timeout=10).model


def status_of(error: exceptions.GoogleAPICallError) -> str:
    return error.response.json()["error"]["status"]


def test_endpoint_lifecycle_and_label_filter(vertex_emulator: VertexEmulator) -> None:
    endpoints, _ = clients(vertex_emulator)
    ours = endpoints.create_endpoint(
        parent=PARENT, endpoint={"display_name": "e", "labels": {"vertex-loadtest-run": "run-1"}}
    ).result(timeout=10)
    endpoints.create_endpoint(
        parent=PARENT, endpoint={"display_name": "e", "labels": {"vertex-loadtest-run": "run-2"}}
    ).result(timeout=10)
    endpoints.create_endpoint(parent=PARENT, endpoint={"display_name": "e"}).result(timeout=10)

    def names(filter_: str) -> list[str]:
        return [e.name for e in endpoints.list_endpoints(request={"parent": PARENT, "filter": filter_})]

    assert names('labels.vertex-loadtest-run="run-1"') == [ours.name]
    assert len(names("labels.vertex-loadtest-run:*")) == 2
    assert len(names('display_name="e"')) == 3
    assert len(names("")) == 3
    assert endpoints.get_endpoint(name=ours.name).labels == {"vertex-loadtest-run": "run-1"}
    endpoints.delete_endpoint(name=ours.name).result(timeout=10)
    with pytest.raises(exceptions.NotFound):
        endpoints.get_endpoint(name=ours.name)
    with pytest.raises(exceptions.BadRequest) as bad:
        endpoints.list_endpoints(request={"parent": PARENT, "filter": "labels.x>3"})
    assert status_of(bad.value) == "INVALID_ARGUMENT"
    with pytest.raises(exceptions.BadRequest):
        endpoints.create_endpoint(parent=PARENT, endpoint={"display_name": "e"}, endpoint_id="01234567890")


def test_paging(vertex_emulator: VertexEmulator) -> None:
    endpoints, _ = clients(vertex_emulator)
    for _ in range(5):
        endpoints.create_endpoint(parent=PARENT, endpoint={"display_name": "p"}).result(timeout=10)
    listed = list(endpoints.list_endpoints(request={"parent": PARENT, "page_size": 2}))
    assert len(listed) == 5 and len({e.name for e in listed}) == 5


def test_deploy_undeploy_traffic_rules(vertex_emulator: VertexEmulator) -> None:
    endpoints, models = clients(vertex_emulator)
    model = upload(models)
    endpoint = (
        endpoints.create_endpoint(parent=PARENT, endpoint={"display_name": "e"}).result(timeout=10).name
    )
    first = (
        endpoints.deploy_model(
            endpoint=endpoint,
            deployed_model={"model": model, "dedicated_resources": MACHINE},
            traffic_split={"0": 100},
        )
        .result(timeout=10)
        .deployed_model.id
    )
    with pytest.raises(exceptions.BadRequest) as bad:  # names a model the endpoint does not have
        endpoints.deploy_model(
            endpoint=endpoint,
            deployed_model={"model": model, "dedicated_resources": MACHINE},
            traffic_split={"0": 50, "42": 50},
        )
    assert status_of(bad.value) == "INVALID_ARGUMENT"
    second = (
        endpoints.deploy_model(
            endpoint=endpoint,
            deployed_model={"model": model, "dedicated_resources": MACHINE},
            traffic_split={"0": 30, first: 70},
        )
        .result(timeout=10)
        .deployed_model.id
    )
    assert endpoints.get_endpoint(name=endpoint).traffic_split == {first: 70, second: 30}

    with pytest.raises(exceptions.BadRequest) as refused:  # delete with deployed models
        endpoints.delete_endpoint(name=endpoint)
    assert status_of(refused.value) == "FAILED_PRECONDITION"
    carries = endpoints.undeploy_model(endpoint=endpoint, deployed_model_id=first)  # traffic, no split
    with pytest.raises(exceptions.GoogleAPICallError):  # accepted; the operation fails
        carries.result(timeout=10)
    assert carries.operation.error.code == 9  # FAILED_PRECONDITION
    with pytest.raises(exceptions.BadRequest) as sums:
        endpoints.undeploy_model(endpoint=endpoint, deployed_model_id=first, traffic_split={second: 90})
    assert status_of(sums.value) == "INVALID_ARGUMENT"
    with pytest.raises(exceptions.NotFound):
        endpoints.undeploy_model(endpoint=endpoint, deployed_model_id="42")

    endpoints.undeploy_model(endpoint=endpoint, deployed_model_id=first, traffic_split={second: 100}).result(
        timeout=10
    )
    assert endpoints.get_endpoint(name=endpoint).traffic_split == {second: 100}
    endpoints.undeploy_model(endpoint=endpoint, deployed_model_id=second).result(timeout=10)
    state = endpoints.get_endpoint(name=endpoint)
    assert not state.deployed_models and not state.traffic_split
    endpoints.delete_endpoint(name=endpoint).result(timeout=10)
    models.delete_model(name=model).result(timeout=10)
    with pytest.raises(exceptions.NotFound):
        models.get_model(name=model)


def test_operations_take_time_can_be_cancelled_and_fail(vertex_emulator: VertexEmulator) -> None:
    endpoints, models = clients(vertex_emulator)
    model = upload(models)
    endpoint = (
        endpoints.create_endpoint(parent=PARENT, endpoint={"display_name": "e"}).result(timeout=10).name
    )
    vertex_emulator.set_operation_seconds(30, "deployModel")
    deploy = endpoints.deploy_model(
        endpoint=endpoint, deployed_model={"model": model, "dedicated_resources": MACHINE}
    )
    assert not endpoints.get_endpoint(name=endpoint).deployed_models  # in flight: not listed yet
    with pytest.raises(exceptions.BadRequest) as busy:
        endpoints.delete_endpoint(name=endpoint)
    assert status_of(busy.value) == "FAILED_PRECONDITION"
    in_flight = [op for op in endpoints.list_operations(request={"name": endpoint}).operations if not op.done]
    assert [op.name for op in in_flight] == [deploy.operation.name]
    endpoints.cancel_operation(request={"name": deploy.operation.name})
    cancelled = endpoints.get_operation(request={"name": deploy.operation.name})
    assert cancelled.done and cancelled.error.code == 1
    assert not endpoints.get_endpoint(name=endpoint).deployed_models

    vertex_emulator.set_operation_seconds(0.3, "deleteEndpoint")
    started = time.monotonic()
    vertex_emulator.fail_operations("deleteEndpoint", status="INTERNAL", message="boom")
    with pytest.raises(exceptions.GoogleAPICallError, match="boom"):
        endpoints.delete_endpoint(name=endpoint).result(timeout=10)
    endpoints.delete_endpoint(name=endpoint).result(timeout=10)
    assert time.monotonic() - started >= 0.6


def test_transient_errors_and_external_delete(vertex_emulator: VertexEmulator) -> None:
    endpoints, _ = clients(vertex_emulator)
    endpoint = (
        endpoints.create_endpoint(parent=PARENT, endpoint={"display_name": "e"}).result(timeout=10).name
    )
    vertex_emulator.fail_requests(429, 1, method="GET")
    vertex_emulator.fail_requests(503, 1, method="GET")
    with pytest.raises(exceptions.TooManyRequests):
        endpoints.get_endpoint(name=endpoint)
    with pytest.raises(exceptions.ServiceUnavailable):
        endpoints.get_endpoint(name=endpoint)
    assert endpoints.get_endpoint(name=endpoint).name == endpoint
    vertex_emulator.delete_externally(endpoint)
    with pytest.raises(exceptions.NotFound):
        endpoints.get_endpoint(name=endpoint)
    assert [r[3] for r in vertex_emulator.requests[-4:]] == [429, 503, 200, 404]


@pytest.fixture
def echo_server() -> Iterator[str]:
    class Echo(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            data = json.dumps({"predictions": [len(body["instances"])], "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_predict_reaches_the_local_model_server(vertex_emulator: VertexEmulator, echo_server: str) -> None:
    endpoints, models = clients(vertex_emulator)
    model = upload(models, echo_server)
    endpoint = (
        endpoints.create_endpoint(parent=PARENT, endpoint={"display_name": "e"}).result(timeout=10).name
    )
    deployed = (
        endpoints.deploy_model(
            endpoint=endpoint,
            deployed_model={"model": model, "dedicated_resources": MACHINE},
            traffic_split={"0": 100},
        )
        .result(timeout=10)
        .deployed_model
    )
    prediction = aiplatform_v1.PredictionServiceClient(**client_kwargs(vertex_emulator.api_endpoint))
    answer = prediction.predict(endpoint=endpoint, instances=[{"x": 1}, {"x": 2}])
    assert list(answer.predictions) == [2]
    assert answer.deployed_model_id == deployed.id and answer.model == model

    request = urllib.request.Request(
        f"{vertex_emulator.api_endpoint}/v1/{endpoint}:predict",
        data=json.dumps({"instances": ["a" * (2 * 1024 * 1024)]}).encode(),
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as too_big:
        urllib.request.urlopen(request, timeout=10)
    assert json.loads(too_big.value.read())["error"]["status"] == "INVALID_ARGUMENT"


def test_predict_through_the_rehearsal_prediction_server(
    vertex_emulator: VertexEmulator, prediction_server: PredictionServer
) -> None:
    endpoints, models = clients(vertex_emulator)
    model = (
        models.upload_model(
            parent=PARENT,
            model={
                "display_name": "rehearsal-model",
                "container_spec": {"image_uri": "local/model", "predict_route": "/predict"},
            },
        )
        .result(timeout=10)
        .model
    )
    vertex_emulator.register_model_server(model, prediction_server.url)  # the emulator-side registry
    endpoint = (
        endpoints.create_endpoint(parent=PARENT, endpoint={"display_name": "e"}).result(timeout=10).name
    )
    endpoints.deploy_model(
        endpoint=endpoint,
        deployed_model={"model": model, "dedicated_resources": MACHINE},
        traffic_split={"0": 100},
    ).result(timeout=10)
    prediction = aiplatform_v1.PredictionServiceClient(**client_kwargs(vertex_emulator.api_endpoint))
    answer = prediction.predict(endpoint=endpoint, instances=[{"x": 1}])
    assert len(answer.predictions) == 1 and answer.model_display_name == "rehearsal-model"
    prediction_server.behaviour.error_rate, prediction_server.behaviour.error_status = 1.0, 429
    with pytest.raises(exceptions.TooManyRequests):  # the model server's 429 stays a 429
        prediction.predict(endpoint=endpoint, instances=[{"x": 1}])
    assert vertex_emulator.predict_statuses == {200: 1, 429: 1}


def test_deploy_local_model_then_cleanup(
    vertex_emulator: VertexEmulator, prediction_server: PredictionServer
) -> None:
    """The rehearsal's path: a labelled endpoint serving the local model, then the cleanup removes both."""
    from vertex_loadtest.endpoint_cleanup.cleanup import CleanupConfig, run_cleanup
    from vertex_loadtest.labels import run_labels

    project, location = PARENT.split("/")[1], PARENT.split("/")[3]
    deployed = deploy_local_model(
        vertex_emulator.api_endpoint,
        project=project,
        location=location,
        model_url=prediction_server.url,
        labels=run_labels("demo-run-1"),
    )
    prediction = aiplatform_v1.PredictionServiceClient(**client_kwargs(vertex_emulator.api_endpoint))
    answer = prediction.predict(endpoint=deployed["endpoint"], instances=[1, 2, 3])
    assert len(answer.predictions) == 3 and answer.deployed_model_id == deployed["deployed_model_id"]
    report = run_cleanup(
        CleanupConfig(
            project=project,
            location=location,
            run_name="demo-run-1",
            api_endpoint=vertex_emulator.api_endpoint,
            delete_models=True,
        )
    )
    assert report.exit_code == 0 and not vertex_emulator.endpoints() and not vertex_emulator.models()


def test_predict_adds_little_latency(
    vertex_emulator: VertexEmulator, prediction_server: PredictionServer
) -> None:
    """Keep-alive requests through the emulator must not pay Nagle + delayed ACK (~40 ms each)."""
    import http.client
    import statistics

    deployed = deploy_local_model(
        vertex_emulator.api_endpoint, project="p", location="l", model_url=prediction_server.url
    )
    connection = http.client.HTTPConnection("127.0.0.1", vertex_emulator.port, timeout=10)
    body = json.dumps({"instances": [[1.0, 2.0]]}).encode()
    timings = []
    for _ in range(40):
        started = time.perf_counter()
        connection.request(
            "POST", f"/v1/{deployed['endpoint']}:predict", body, {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        response.read()
        timings.append(time.perf_counter() - started)
        assert response.status == 200
    connection.close()
    assert statistics.median(timings) < 0.02, f"median {statistics.median(timings) * 1000:.1f} ms"


def test_cli_serves_and_takes_faults_over_http(tmp_path: object) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "vertex_loadtest.cli", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        api_endpoint = line.split(" on ")[1].split()[0]
        faults = {"requests": [{"httpStatus": 503, "count": 1}], "operationSeconds": {"*": 0}}
        urllib.request.urlopen(
            urllib.request.Request(
                f"{api_endpoint}/_emulator/faults", data=json.dumps(faults).encode(), method="POST"
            ),
            timeout=10,
        )
        endpoints = aiplatform_v1.EndpointServiceClient(**client_kwargs(api_endpoint))
        with pytest.raises(exceptions.ServiceUnavailable):
            endpoints.list_endpoints(request={"parent": PARENT})
        assert list(endpoints.list_endpoints(request={"parent": PARENT})) == []
    finally:
        process.terminate()
        process.communicate(timeout=10)
