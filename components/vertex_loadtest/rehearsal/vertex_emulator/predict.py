"""``:predict`` and ``:rawPredict``: a deployed model picked by the traffic split, its local server called.

The model server is found by ``register_model_server`` (wins) or by the ``VERTEX_EMULATOR_MODEL_URL``
variable in the model's ``containerSpec.env``; see docs/rehearsal.md for the contract. Runs without
the emulator's lock while the model server answers.
"""

from __future__ import annotations

import copy
import http.client
import json
import urllib.error
import urllib.request
from typing import Any

from vertex_loadtest.rehearsal.vertex_calls import MODEL_URL_ENV
from vertex_loadtest.rehearsal.vertex_emulator.call import Call, RawReply, Reply
from vertex_loadtest.rehearsal.vertex_emulator.state import Backend, Json
from vertex_loadtest.rehearsal.vertex_emulator.status import ApiError, status_for_http

MAX_PREDICT_BYTES = int(1.5 * 1024 * 1024)


def _model_url(model: Json) -> str:
    for variable in (model.get("containerSpec") or {}).get("env", []):
        if variable.get("name") == MODEL_URL_ENV:
            return str(variable.get("value", ""))
    return ""


def _pick_deployed_model(backend: Backend, endpoint: Json) -> Json:
    by_id = {dm["id"]: dm for dm in endpoint["deployedModels"]}
    weights = [(i, w) for i, w in endpoint["trafficSplit"].items() if w > 0 and i in by_id]
    if not weights:
        raise ApiError(
            "FAILED_PRECONDITION", f'Endpoint "{endpoint["name"]}" has no DeployedModel receiving traffic.'
        )
    pick = backend.random.uniform(0, sum(w for _, w in weights))
    for deployed_id, weight in weights:
        pick -= weight
        if pick <= 0:
            return dict(by_id[deployed_id])
    return dict(by_id[weights[-1][0]])


def _target(backend: Backend, endpoint_name: str) -> tuple[Json, Json, str]:
    """The deployed model to serve this request, its model and the URL to POST to."""
    with backend.lock:
        backend.advance()
        endpoint = copy.deepcopy(backend.endpoint(endpoint_name))
        deployed = _pick_deployed_model(backend, endpoint)
        model = copy.deepcopy(backend.state.models.get(deployed["model"], {}))
        url = backend.state.model_servers.get(deployed["model"]) or _model_url(model)
    if not url:
        raise ApiError(
            "FAILED_PRECONDITION",
            f'Model "{deployed["model"]}" has no local server: set {MODEL_URL_ENV} in its '
            "containerSpec.env or register_model_server().",
        )
    route = (model.get("containerSpec") or {}).get("predictRoute", "")
    return deployed, model, url.rstrip("/") + route if route else url


def _forward(url: str, body: bytes, timeout: float) -> bytes:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    too_slow = ApiError("DEADLINE_EXCEEDED", f"The model server did not answer within {timeout}s.")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", "replace")[:2000]
        raise ApiError(
            status_for_http(error.code), f"The model server answered {error.code}: {detail}"
        ) from error
    except TimeoutError as error:
        raise too_slow from error
    except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as error:
        if isinstance(getattr(error, "reason", None), TimeoutError):
            raise too_slow from error
        raise ApiError("UNAVAILABLE", f"The model server at {url} is unreachable: {error}") from error


def _check_size(body: bytes) -> None:
    if len(body) > MAX_PREDICT_BYTES:
        raise ApiError(
            "INVALID_ARGUMENT",
            f"Request payload size {len(body)} bytes exceeds the limit of {MAX_PREDICT_BYTES} bytes "
            "(1.5 MB).",
        )


def predict(backend: Backend, call: Call) -> Reply:
    """The model server's JSON plus ``deployedModelId``, ``model``, ``modelDisplayName`` and
    ``modelVersionId``."""
    _check_size(call.body)
    if "instances" not in call.json():
        raise ApiError("INVALID_ARGUMENT", "PredictRequest.instances is required.")
    deployed, model, url = _target(backend, call.name)
    answer = _forward(url, call.body, backend.predict_timeout)
    try:
        decoded: Any = json.loads(answer or b"{}")
    except ValueError as error:
        raise ApiError("INTERNAL", f"The model server answered non-JSON: {answer[:200]!r}") from error
    payload: Json = decoded if isinstance(decoded, dict) else {"predictions": decoded}
    payload.update(
        deployedModelId=deployed["id"],
        model=deployed["model"],
        modelDisplayName=model.get("displayName", ""),
        modelVersionId=deployed.get("modelVersionId", "1"),
    )
    return payload


def raw_predict(backend: Backend, call: Call) -> Reply:
    """The model server's bytes unchanged, with the ``X-Vertex-AI-*`` headers naming who answered."""
    _check_size(call.body)
    deployed, _, url = _target(backend, call.name)
    answer = _forward(url, call.body, backend.predict_timeout)
    headers = {
        "X-Vertex-AI-Endpoint-Id": call.name.rsplit("/", 1)[-1],
        "X-Vertex-AI-Deployed-Model-Id": str(deployed["id"]),
    }
    return RawReply(answer, headers)
