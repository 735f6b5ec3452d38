"""The emulator pinned to the published API description, the Vertex AI v1 discovery document.

Routes, query parameters, the JSON keys it answers and its validation limits must be those of
``aiplatform.v1.json`` (shipped in google-api-python-client), so the emulator cannot drift from the API.
"""

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import googleapiclient
import pytest
from google.api_core import exceptions
from google.cloud.aiplatform_v1.services.endpoint_service.transports import rest_base as endpoint_rest
from google.cloud.aiplatform_v1.services.model_service.transports import rest_base as model_rest
from google.cloud.aiplatform_v1.services.pipeline_service.transports import rest_base as pipeline_rest

from vertex_loadtest.labels import MAX_LABEL_LENGTH
from vertex_loadtest.rehearsal.prediction_server import PredictionServer
from vertex_loadtest.rehearsal.vertex_calls import MODEL_URL_ENV
from vertex_loadtest.rehearsal.vertex_emulator import VertexEmulator, routes, validation
from vertex_loadtest.vertex_clients import VertexClients

DOCUMENT = Path(googleapiclient.__file__).parent / "discovery_cache/documents/aiplatform.v1.json"
PARENT = "projects/p/locations/us-central1"
MACHINE = {"machine_spec": {"machine_type": "n1-standard-4"}, "min_replica_count": 1, "max_replica_count": 1}
#: AIP-193's JSON error adds the status name to google.rpc.Status's fields.
ERROR_KEYS = {"status"}


@pytest.fixture(scope="module")
def discovery() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text(encoding="utf-8"))


def _methods(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from resource.get("methods", {}).values()
    for child in resource.get("resources", {}).values():
        yield from _methods(child)


@pytest.fixture(scope="module")
def methods(discovery: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {method["id"]: method for method in _methods(discovery)}


def _example(flat_path: str) -> str:
    """A concrete path for a discovery ``flatPath`` (numeric ids everywhere)."""
    return "/" + re.sub(r"\{[A-Za-z]+\}", "7", flat_path)


def test_every_route_is_a_discovery_method(methods: dict[str, dict[str, Any]]) -> None:
    assert len({route.method_id for route in routes.ROUTES}) == len(routes.ROUTES)
    for route in routes.ROUTES:
        method = methods.get(route.method_id)
        assert method is not None, f"{route.method_id} is not in the discovery document"
        assert (route.http_method, route.flat_path) == (method["httpMethod"], method["flatPath"])


def test_handlers_read_only_documented_query_parameters(methods: dict[str, dict[str, Any]]) -> None:
    for route in routes.ROUTES:
        documented = {
            name
            for name, spec in methods[route.method_id].get("parameters", {}).items()
            if spec["location"] == "query"
        }
        assert route.params <= documented, f"{route.method_id} reads {sorted(route.params - documented)}"


def _transport_bindings() -> list[tuple[str, re.Pattern[str]]]:
    """(HTTP method, URI regex) of every binding the Python REST transports use."""
    bindings = []
    for module in (endpoint_rest, model_rest, pipeline_rest):
        transport = next(v for k, v in vars(module).items() if k.endswith("RestTransport"))
        for name in dir(transport):
            options = getattr(getattr(transport, name), "_get_http_options", None)
            for option in options() if options else []:
                template = re.escape(option["uri"])
                template = re.sub(r"\\\{[a-z_]+=([^}]*)\\\}", r"\1", template).replace(r"\*", "[^/:]+")
                bindings.append((option["method"].upper(), re.compile(template)))
    return bindings


def test_ui_prefix_only_where_the_rest_transport_uses_it() -> None:
    bindings = _transport_bindings()
    for route in routes.ROUTES:
        ui_path = "/ui" + _example(route.flat_path).removeprefix("/v1")
        used = any(m == route.http_method and p.fullmatch(ui_path) for m, p in bindings)
        assert used == route.ui, f"{route.method_id}: the transport uses /ui/: {used}; the route: {route.ui}"
        served, _, _ = routes.find(route.http_method, ui_path)
        assert (served is not None) == route.ui, route.method_id
        assert routes.find(route.http_method, _example(route.flat_path))[0] is route


def test_validation_limits_are_the_documented_ones(discovery: dict[str, Any]) -> None:
    schemas = discovery["schemas"]
    endpoint_id = discovery["resources"]["projects"]["resources"]["locations"]["resources"]["endpoints"][
        "methods"
    ]["create"]["parameters"]["endpointId"]["description"]
    assert f"letter, this value may be up to {validation.MAX_ENDPOINT_ID_CHARS} characters" in endpoint_id
    assert (
        f"number, this value may be up to {validation.MAX_NUMERIC_ENDPOINT_ID_DIGITS} characters"
        in endpoint_id
    )
    assert "no leading zeros" in endpoint_id and "last character must be a letter or number" in endpoint_id
    for schema in ("GoogleCloudAiplatformV1Endpoint", "GoogleCloudAiplatformV1Model"):
        display_name = schemas[schema]["properties"]["displayName"]["description"]
        assert f"up to {validation.MAX_DISPLAY_NAME_CHARS} characters long" in display_name
        labels = schemas[schema]["properties"]["labels"]["description"]
        documented = int(re.search(r"no longer than (\d+) characters", labels)[1])  # type: ignore[index]
        assert documented == MAX_LABEL_LENGTH and "International characters are allowed" in labels


# ----------------------------------------------------------------------- emitted JSON vs. schemas
def _check(value: Any, schema: dict[str, Any], schemas: dict[str, Any], where: str) -> None:
    if "$ref" in schema:
        schema = schemas[schema["$ref"]]
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, schema.get("items", {}), schemas, f"{where}[{i}]")
        return
    if not isinstance(value, dict):
        return
    if "properties" in schema:
        unknown = sorted(set(value) - set(schema["properties"]))
        assert not unknown, f"{where}: {unknown} are not properties of {schema.get('id')}"
        for key, item in value.items():
            _check(item, schema["properties"][key], schemas, f"{where}.{key}")
    elif "@type" in value:  # google.protobuf.Any: the packed message's schema
        packed = value["@type"].rsplit(".", 1)[-1]
        if packed != "Empty":
            rest = {k: v for k, v in value.items() if k != "@type"}
            _check(rest, {"$ref": f"GoogleCloudAiplatformV1{packed}"}, schemas, f"{where}<{packed}>")
    elif isinstance(schema.get("additionalProperties"), dict):
        for key, item in value.items():
            _check(item, schema["additionalProperties"], schemas, f"{where}[{key}]")


def _exercise(emulator: VertexEmulator, model_url: str) -> None:
    """Every route through the real aiplatform_v1 clients (REST), errors included."""
    clients = VertexClients(emulator.api_endpoint)
    endpoints, models = clients.endpoints, clients.models
    model = (
        models.upload_model(
            parent=PARENT,
            model={
                "display_name": "m",
                "labels": {"team": "ml"},
                "container_spec": {
                    "image_uri": "local/m",
                    "predict_route": "/predict",
                    "env": [{"name": MODEL_URL_ENV, "value": model_url}],
                },
            },
        )
        .result(timeout=10)
        .model
    )
    endpoint = (
        endpoints.create_endpoint(
            parent=PARENT, endpoint={"display_name": "e", "labels": {"team": "ml"}}, endpoint_id="42"
        )
        .result(timeout=10)
        .name
    )
    endpoints.create_endpoint(parent=PARENT, endpoint={"display_name": "f"}).result(timeout=10)
    assert len(list(endpoints.list_endpoints(request={"parent": PARENT, "page_size": 1}))) == 2
    assert len(list(endpoints.list_endpoints(request={"parent": PARENT, "filter": "labels.team=ml"}))) == 1
    assert [m.name for m in models.list_models(request={"parent": PARENT, "page_size": 1})] == [model]
    endpoints.update_endpoint(
        endpoint={"name": endpoint, "description": "d"}, update_mask={"paths": ["description"]}
    )
    deploy = endpoints.deploy_model(
        endpoint=endpoint,
        deployed_model={"model": model, "dedicated_resources": MACHINE},
        traffic_split={"0": 100},
    )
    deployed = deploy.result(timeout=10).deployed_model.id
    endpoints.get_endpoint(name=endpoint)
    models.get_model(name=model)
    clients.prediction.predict(endpoint=endpoint, instances=[[1.0, 2.0]])
    raw = urllib.request.Request(  # curl's way: the REST client wraps the bytes in JSON
        f"{emulator.api_endpoint}/v1/{endpoint}:rawPredict", data=b'{"instances": [[1.0]]}', method="POST"
    )
    with urllib.request.urlopen(raw, timeout=10) as answer:
        assert answer.headers["X-Vertex-AI-Deployed-Model-Id"] == deployed
    for service, resource in ((endpoints, endpoint), (models, model)):
        operation = service.list_operations(request={"name": resource, "page_size": 1}).operations[0]
        service.get_operation(request={"name": operation.name})
        service.wait_operation(request={"name": operation.name, "timeout": {"seconds": 1}})
        service.cancel_operation(request={"name": operation.name})
        service.delete_operation(request={"name": operation.name})
    emulator.set_pipeline_job_state("job-1", "PIPELINE_STATE_RUNNING")
    clients.pipelines.get_pipeline_job(name=f"{PARENT}/pipelineJobs/job-1")
    endpoints.undeploy_model(endpoint=endpoint, deployed_model_id=deployed).result(timeout=10)
    endpoints.delete_endpoint(name=endpoint).result(timeout=10)
    models.delete_model(name=model).result(timeout=10)
    with pytest.raises(exceptions.NotFound):
        endpoints.get_endpoint(name=endpoint)
    with pytest.raises(exceptions.BadRequest):
        endpoints.list_endpoints(request={"parent": PARENT, "page_token": "not-a-token"})


def test_every_json_key_the_emulator_emits_is_in_the_schema(
    discovery: dict[str, Any], methods: dict[str, dict[str, Any]], prediction_server: PredictionServer
) -> None:
    schemas = discovery["schemas"]
    answers: list[tuple[str, str, int, Any]] = []
    with VertexEmulator() as emulator:
        handle = emulator.handle

        def recording(method: str, path: str, body: bytes) -> tuple[int, Any]:
            status, payload = handle(method, path, body)
            answers.append((method, path.split("?")[0], status, payload))
            return status, payload

        emulator.handle = recording  # type: ignore[method-assign]
        _exercise(emulator, prediction_server.url)
    served = set()
    for method, path, status, payload in answers:
        route, _, _ = routes.find(method, path)
        assert route is not None, (method, path)
        served.add(route.method_id)
        if status >= 400:
            assert set(payload) == {"error"}, payload
            assert set(payload["error"]) <= set(schemas["GoogleRpcStatus"]["properties"]) | ERROR_KEYS
            continue
        if isinstance(payload, dict):
            response = methods[route.method_id].get("response", {"$ref": "GoogleProtobufEmpty"})
            _check(payload, response, schemas, route.method_id)
    assert served == {route.method_id for route in routes.ROUTES}, "exercise every route"
