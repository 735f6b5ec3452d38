"""Endpoint semantics: create, list, get, patch, delete, deployModel, undeployModel.

A mutation takes effect when its operation finishes: a deploy in flight is not yet in ``deployedModels``,
an undeploy in flight still is. One mutating operation per endpoint at a time.
"""

from __future__ import annotations

import copy
import time

from vertex_loadtest.rehearsal.vertex_emulator.call import Call
from vertex_loadtest.rehearsal.vertex_emulator.filters import compile_filter, paginate
from vertex_loadtest.rehearsal.vertex_emulator.state import EMPTY_TYPE, TYPE_PREFIX, Backend, Json, rfc3339
from vertex_loadtest.rehearsal.vertex_emulator.status import ApiError
from vertex_loadtest.rehearsal.vertex_emulator.validation import (
    parse_split,
    validate_display_name,
    validate_endpoint_id,
    validate_labels,
    validate_split,
)

_MUTATIONS = ("deployModel", "undeployModel", "deleteEndpoint")
_PATCHABLE = {"display_name": "displayName", "traffic_split": "trafficSplit"}


def create(backend: Backend, call: Call) -> Json:
    body = call.json()
    endpoint_id = call.param("endpointId")
    if endpoint_id:
        validate_endpoint_id(endpoint_id)
    display_name = validate_display_name(body.get("displayName"), "Endpoint")
    labels = validate_labels(body.get("labels", {}))
    name = f"{call.name}/endpoints/{endpoint_id or backend.new_id()}"
    if name in backend.state.endpoints:
        raise ApiError("ALREADY_EXISTS", f'Endpoint "{name}" already exists.')
    now = rfc3339()
    endpoint = {
        "name": name,
        "displayName": display_name,
        "description": str(body.get("description", "")),
        "labels": labels,
        "deployedModels": [],
        "trafficSplit": {},
        "createTime": now,
        "updateTime": now,
        "etag": backend.new_id(),
    }

    def apply() -> Json:
        backend.state.endpoints[name] = endpoint
        return copy.deepcopy(endpoint)

    return backend.start_operation("createEndpoint", name, apply, TYPE_PREFIX + "Endpoint")


def list_(backend: Backend, call: Call) -> Json:
    matches = compile_filter(call.param("filter"), id_field="endpoint", misread=backend.misread_filter)
    items = [
        copy.deepcopy(endpoint)
        for name, endpoint in sorted(backend.state.endpoints.items(), key=lambda item: item[1]["createTime"])
        if name.startswith(call.name + "/") and matches(endpoint)
    ]
    page, token = paginate(items, call.param("pageSize"), call.param("pageToken"), backend.list_page_size)
    return {"endpoints": page, **({"nextPageToken": token} if token else {})}


def get(backend: Backend, call: Call) -> Json:
    return copy.deepcopy(backend.endpoint(call.name))


def patch(backend: Backend, call: Call) -> Json:
    endpoint = backend.endpoint(call.name)
    body = call.json()
    mask = [_PATCHABLE.get(p.strip(), p.strip()) for p in call.param("updateMask").split(",") if p.strip()]
    if not mask:
        raise ApiError("INVALID_ARGUMENT", "update_mask is required: name the fields to update.")
    for path in mask:
        if path == "trafficSplit":
            split = parse_split(body.get("trafficSplit"))
            validate_split(split, [dm["id"] for dm in endpoint["deployedModels"]])
            endpoint["trafficSplit"] = split
        elif path == "labels":
            endpoint["labels"] = validate_labels(body.get("labels", {}))
        elif path == "displayName":
            endpoint[path] = validate_display_name(body.get(path), "Endpoint")
        elif path == "description":
            endpoint[path] = str(body.get(path, ""))
        else:
            raise ApiError("INVALID_ARGUMENT", f"update_mask path {path!r} is not supported.")
    endpoint["updateTime"] = rfc3339()
    return copy.deepcopy(endpoint)


def _refuse_if_busy(backend: Backend, name: str) -> None:
    busy = backend.in_flight(name, _MUTATIONS)
    if busy:
        raise ApiError(
            "FAILED_PRECONDITION",
            f'Endpoint "{name}" has an operation in progress ({busy[0].name}); retry after it finishes.',
        )


def delete(backend: Backend, call: Call) -> Json:
    name = call.name
    endpoint = backend.endpoint(name)
    if endpoint["deployedModels"] or backend.in_flight(name, ("deployModel",)):
        raise ApiError(
            "FAILED_PRECONDITION",
            f'The Endpoint "{name}" has deployed or being deployed DeployedModel(s). '
            "Undeploy them before deleting the Endpoint.",
        )
    _refuse_if_busy(backend, name)

    def apply() -> Json:
        if backend.endpoint(name)["deployedModels"]:
            raise ApiError("FAILED_PRECONDITION", f'The Endpoint "{name}" has deployed DeployedModel(s).')
        del backend.state.endpoints[name]
        return {}

    return backend.start_operation("deleteEndpoint", name, apply, EMPTY_TYPE)


def deploy_model(backend: Backend, call: Call) -> Json:
    name = call.name
    endpoint = backend.endpoint(name)
    body = call.json()
    requested = body.get("deployedModel") or {}
    model_name = str(requested.get("model", ""))
    model = backend.model(backend.canonical(model_name))
    if not (requested.get("dedicatedResources") or requested.get("automaticResources")):
        raise ApiError("INVALID_ARGUMENT", "DeployedModel needs dedicated_resources or automatic_resources.")
    _refuse_if_busy(backend, name)
    split = parse_split(body.get("trafficSplit"))
    if split:
        validate_split(split, [dm["id"] for dm in endpoint["deployedModels"]] + ["0"])
    deployed_id = str(requested.get("id") or backend.new_id())
    deployed = {
        **copy.deepcopy(requested),
        "id": deployed_id,
        "model": model["name"],
        "modelVersionId": model.get("versionId", "1"),
        "displayName": requested.get("displayName") or model["displayName"],
        "createTime": rfc3339(),
    }

    def apply() -> Json:
        current = backend.endpoint(name)
        current["deployedModels"].append(deployed)
        if split:
            current["trafficSplit"] = {(deployed_id if k == "0" else k): v for k, v in split.items()}
        current["updateTime"] = rfc3339()
        return {"deployedModel": copy.deepcopy(deployed)}

    return backend.start_operation("deployModel", name, apply, TYPE_PREFIX + "DeployModelResponse")


def undeploy_model(backend: Backend, call: Call) -> Json:
    name = call.name
    endpoint = backend.endpoint(name)
    body = call.json()
    deployed_id = str(body.get("deployedModelId", ""))
    ids = [dm["id"] for dm in endpoint["deployedModels"]]
    if deployed_id not in ids:
        raise ApiError("NOT_FOUND", f'DeployedModel "{deployed_id}" not found in Endpoint "{name}".')
    _refuse_if_busy(backend, name)
    remaining = [i for i in ids if i != deployed_id]
    split = parse_split(body.get("trafficSplit"))
    if split:
        if split.get(deployed_id, 0) != 0:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"traffic_split must assign 0% to the DeployedModel being undeployed ({deployed_id}).",
            )
        split.pop(deployed_id, None)
        validate_split(split, remaining)

    def apply() -> Json:
        current = backend.endpoint(name)
        carried = current["trafficSplit"].get(deployed_id, 0)
        if not split and carried > 0 and len(current["deployedModels"]) > 1:
            # Accepted at the call; the service fails the operation (FAILED_PRECONDITION in ``error``).
            raise ApiError(
                "FAILED_PRECONDITION",
                f'DeployedModel "{deployed_id}" receives {carried}% of the traffic of Endpoint "{name}"; '
                "provide a traffic_split that moves it to the remaining DeployedModels.",
            )
        undeployed = [dm for dm in current["deployedModels"] if dm["id"] == deployed_id]
        current["deployedModels"] = [dm for dm in current["deployedModels"] if dm["id"] != deployed_id]
        if not current["deployedModels"]:
            current["trafficSplit"] = {}
        elif split:
            current["trafficSplit"] = dict(split)
        else:
            current["trafficSplit"].pop(deployed_id, None)
        current["updateTime"] = rfc3339()
        for deployed in undeployed:
            backend.undeployed_at[deployed["model"]] = time.time()
        return {}

    return backend.start_operation("undeployModel", name, apply, TYPE_PREFIX + "UndeployModelResponse")
