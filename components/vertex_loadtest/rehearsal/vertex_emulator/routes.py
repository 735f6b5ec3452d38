"""The route table, built once: each route names the discovery method it implements.

``flat_path`` is written as the Vertex AI v1 discovery document writes it (``aiplatform.v1.json``), and
``params`` lists the query parameters its handler reads; tests/integration/test_emulator_discovery.py
holds both to that document. ``ui``: also served under ``/ui/``, the URI binding the Python REST
transport of ``aiplatform_v1`` uses for operations.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from vertex_loadtest.rehearsal.vertex_emulator import endpoints, models, operations, predict
from vertex_loadtest.rehearsal.vertex_emulator.call import Call, Reply
from vertex_loadtest.rehearsal.vertex_emulator.state import Backend

Handler = Callable[[Backend, Call], Reply]
_LOCATION = "v1/projects/{projectsId}/locations/{locationsId}"
_ENDPOINT = _LOCATION + "/endpoints/{endpointsId}"
_MODEL = _LOCATION + "/models/{modelsId}"
_PAGED = frozenset({"filter", "pageSize", "pageToken"})


@dataclass(frozen=True)
class Route:
    """One API method the emulator serves.

    Args:
        method_id: The discovery method id, e.g. ``aiplatform.projects.locations.endpoints.list``.
        http_method: ``GET``, ``POST``, ``PATCH`` or ``DELETE``.
        flat_path: The discovery ``flatPath``.
        kind: The request's kind in ``VertexEmulator.requests`` and for faults and hooks.
        handler: Answers the call.
        params: Query parameters the handler reads.
        collection: The call names the parent: the path without its last segment.
        ui: Also served under ``/ui/`` (operations, as the Python REST transport calls them).
        locked: The handler runs holding the emulator's lock (all but predictions).
    """

    method_id: str
    http_method: str
    flat_path: str
    kind: str
    handler: Handler
    params: frozenset[str] = frozenset()
    collection: bool = False
    ui: bool = False
    locked: bool = True
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\\\{[A-Za-z]+\\\}", "[^/:]+", re.escape(self.flat_path.removeprefix("v1/")))
        prefixes = "(?:v1|ui)" if self.ui else "v1"
        object.__setattr__(self, "pattern", re.compile(rf"/{prefixes}/({regex})"))

    def resource(self, path: str) -> str | None:
        """The resource ``path`` names for this route, or None when it is not this route's path."""
        match = self.pattern.fullmatch(path)
        if match is None:
            return None
        name = match[1].split(":", 1)[0]
        return name.rsplit("/", 1)[0] if self.collection else name


def _operation_routes(collection: str, parent: str) -> list[Route]:
    method = f"aiplatform.projects.locations.{collection}.operations"
    one = parent + "/operations/{operationsId}"
    return [
        Route(f"{method}.get", "GET", one, "getOperation", operations.get, ui=True),
        Route(f"{method}.cancel", "POST", one + ":cancel", "cancelOperation", operations.cancel, ui=True),
        Route(
            f"{method}.wait",
            "POST",
            one + ":wait",
            "waitOperation",
            operations.wait,
            frozenset({"timeout"}),
            ui=True,
        ),
        Route(f"{method}.delete", "DELETE", one, "deleteOperation", operations.delete, ui=True),
        Route(
            f"{method}.list",
            "GET",
            parent + "/operations",
            "listOperations",
            operations.list_,
            _PAGED,
            collection=True,
            ui=True,
        ),
    ]


_ENDPOINTS = "aiplatform.projects.locations.endpoints"
_MODELS = "aiplatform.projects.locations.models"
ROUTES: tuple[Route, ...] = (
    Route(
        f"{_ENDPOINTS}.create",
        "POST",
        _LOCATION + "/endpoints",
        "createEndpoint",
        endpoints.create,
        frozenset({"endpointId"}),
        collection=True,
    ),
    Route(
        f"{_ENDPOINTS}.list",
        "GET",
        _LOCATION + "/endpoints",
        "listEndpoints",
        endpoints.list_,
        _PAGED,
        collection=True,
    ),
    Route(f"{_ENDPOINTS}.get", "GET", _ENDPOINT, "getEndpoint", endpoints.get),
    Route(
        f"{_ENDPOINTS}.patch",
        "PATCH",
        _ENDPOINT,
        "updateEndpoint",
        endpoints.patch,
        frozenset({"updateMask"}),
    ),
    Route(f"{_ENDPOINTS}.delete", "DELETE", _ENDPOINT, "deleteEndpoint", endpoints.delete),
    Route(
        f"{_ENDPOINTS}.deployModel", "POST", _ENDPOINT + ":deployModel", "deployModel", endpoints.deploy_model
    ),
    Route(
        f"{_ENDPOINTS}.undeployModel",
        "POST",
        _ENDPOINT + ":undeployModel",
        "undeployModel",
        endpoints.undeploy_model,
    ),
    Route(f"{_ENDPOINTS}.predict", "POST", _ENDPOINT + ":predict", "predict", predict.predict, locked=False),
    Route(
        f"{_ENDPOINTS}.rawPredict",
        "POST",
        _ENDPOINT + ":rawPredict",
        "rawPredict",
        predict.raw_predict,
        locked=False,
    ),
    *_operation_routes("endpoints", _ENDPOINT),
    Route(
        f"{_MODELS}.upload",
        "POST",
        _LOCATION + "/models:upload",
        "uploadModel",
        models.upload,
        collection=True,
    ),
    Route(
        f"{_MODELS}.list", "GET", _LOCATION + "/models", "listModels", models.list_, _PAGED, collection=True
    ),
    Route(f"{_MODELS}.get", "GET", _MODEL, "getModel", models.get),
    Route(f"{_MODELS}.delete", "DELETE", _MODEL, "deleteModel", models.delete),
    *_operation_routes("models", _MODEL),
    Route(
        "aiplatform.projects.locations.pipelineJobs.get",
        "GET",
        _LOCATION + "/pipelineJobs/{pipelineJobsId}",
        "getPipelineJob",
        models.get_pipeline_job,
    ),
)


def find(method: str, path: str) -> tuple[Route | None, str, bool]:
    """The route serving ``method path``, the resource it names, and whether any route serves the path."""
    path_served = False
    for route in ROUTES:
        resource = route.resource(path)
        if resource is None:
            continue
        if route.http_method == method:
            return route, resource, True
        path_served = True
    return None, "", path_served
