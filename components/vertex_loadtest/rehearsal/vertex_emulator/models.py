"""Model semantics (upload, list, get, delete) and the pipeline jobs the sweeper asks about."""

from __future__ import annotations

import copy
import time

from vertex_loadtest.rehearsal.vertex_emulator.call import Call
from vertex_loadtest.rehearsal.vertex_emulator.filters import compile_filter, paginate
from vertex_loadtest.rehearsal.vertex_emulator.state import EMPTY_TYPE, TYPE_PREFIX, Backend, Json, rfc3339
from vertex_loadtest.rehearsal.vertex_emulator.status import ApiError
from vertex_loadtest.rehearsal.vertex_emulator.validation import validate_display_name, validate_labels


def upload(backend: Backend, call: Call) -> Json:
    body = call.json()
    requested = body.get("model") or {}
    validate_display_name(requested.get("displayName"), "Model")
    labels = validate_labels(requested.get("labels", {}))
    name = f"{call.name}/models/{body.get('modelId') or backend.new_id()}"
    if name in backend.state.models:
        raise ApiError("ALREADY_EXISTS", f'Model "{name}" already exists.')
    now = rfc3339()
    model = {
        **copy.deepcopy(requested),
        "name": name,
        "versionId": "1",
        "versionAliases": ["default"],
        "labels": labels,
        "createTime": now,
        "updateTime": now,
        "versionCreateTime": now,
        "versionUpdateTime": now,
        "etag": backend.new_id(),
    }

    def apply() -> Json:
        backend.state.models[name] = model
        return {"model": name, "modelVersionId": "1"}

    return backend.start_operation("uploadModel", name, apply, TYPE_PREFIX + "UploadModelResponse")


def list_(backend: Backend, call: Call) -> Json:
    matches = compile_filter(call.param("filter"), id_field="model", misread=backend.misread_filter)
    items = [
        copy.deepcopy(model)
        for name, model in sorted(backend.state.models.items(), key=lambda item: item[1]["createTime"])
        if name.startswith(call.name + "/") and matches(model)
    ]
    page, token = paginate(items, call.param("pageSize"), call.param("pageToken"), backend.list_page_size)
    return {"models": page, **({"nextPageToken": token} if token else {})}


def _deployments(backend: Backend, model_name: str) -> list[Json]:
    return [
        {"endpoint": endpoint["name"], "deployedModelId": deployed["id"]}
        for endpoint in backend.state.endpoints.values()
        for deployed in endpoint["deployedModels"]
        if deployed["model"] == model_name
    ]


def get(backend: Backend, call: Call) -> Json:
    model = copy.deepcopy(backend.model(call.name))
    deployments = _deployments(backend, model["name"])
    if deployments:
        model["deployedModels"] = deployments
    return model


def delete(backend: Backend, call: Call) -> Json:
    model = backend.model(call.name)
    name = str(model["name"])
    users = sorted({d["endpoint"] for d in _deployments(backend, name)})
    if users:
        raise ApiError(
            "FAILED_PRECONDITION",
            f'Model "{name}" is deployed to Endpoint(s) {", ".join(users)}; undeploy it first.',
        )
    blocked_until = (
        backend.undeployed_at.get(name, 0.0) + backend.model_delete_blocked_seconds * backend.time_scale
    )
    if time.time() < blocked_until:
        raise ApiError(
            "FAILED_PRECONDITION",
            f'Model "{name}" was undeployed moments ago and cannot be deleted yet; retry later.',
        )

    def apply() -> Json:
        backend.state.models.pop(name, None)
        return {}

    return backend.start_operation("deleteModel", name, apply, EMPTY_TYPE)


def get_pipeline_job(backend: Backend, call: Call) -> Json:
    job_id = call.name.rsplit("/", 1)[-1]
    state = backend.state.pipeline_jobs.get(job_id)
    if state is None:
        raise ApiError("NOT_FOUND", f'PipelineJob "{call.name}" not found.')
    return {"name": call.name, "displayName": job_id, "state": state}
