"""A local Vertex AI emulator: the part of the v1 REST API the components and the rehearsal use.

The unmodified ``google.cloud.aiplatform_v1`` clients talk to it over REST::

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1

    with VertexEmulator() as emulator:
        client = aiplatform_v1.EndpointServiceClient(
            credentials=AnonymousCredentials(),           # loopback only
            transport="rest",
            client_options={"api_endpoint": emulator.api_endpoint},   # "http://127.0.0.1:PORT"
        )

``api_endpoint`` carries the ``http://`` scheme: the REST transport keeps a scheme it is given (its
``url_scheme`` argument, ``"https"`` by default, only applies to a bare ``host:port``), so no
transport object has to be built by hand. ``vertex_clients.client_kwargs`` returns these arguments.
The server binds 127.0.0.1 only and refuses any other host.

What it implements (paths as in ``aiplatform_v1``'s REST transports, JSON in camelCase, errors in
Google's shape ``{"error": {"code": 400, "message": ..., "status": "FAILED_PRECONDITION"}}``):

* endpoints: ``POST/GET {parent}/endpoints`` (create with optional ``endpointId``; list with
  ``filter`` -- ``labels.KEY="VALUE"``, ``labels.KEY:*``, ``labels:KEY``, ``display_name``/
  ``displayName``, ``endpoint`` with ``=``/``!=``, joined by ``AND`` -- ``pageSize``/``pageToken``),
  ``GET/PATCH/DELETE {endpoint}`` (PATCH honours ``updateMask`` for displayName, description, labels,
  trafficSplit), ``{endpoint}:deployModel``, ``{endpoint}:undeployModel``, ``{endpoint}:predict``,
  ``{endpoint}:rawPredict``;
* models: ``POST {parent}/models:upload``, ``GET {parent}/models`` (same label filter),
  ``GET/DELETE {model}``;
* long-running operations (under ``/v1/`` and ``/ui/``: ``aiplatform_v1``'s operations client uses
  the ``/ui/`` binding it lists first): every mutation returns an Operation named
  ``{resource}/operations/{id}``; ``GET {op}``, ``POST {op}:cancel``, ``POST {op}:wait``,
  ``DELETE {op}``, ``GET {resource}/operations``; ``done``, ``error``, typed ``metadata`` and
  ``response`` as Vertex returns them;
* pipeline jobs: ``GET {parent}/pipelineJobs/{id}`` answers for jobs registered with
  :meth:`VertexEmulator.set_pipeline_job_state` (what the cleanup's sweeper asks), NOT_FOUND otherwise.

Faithful behaviour (what the cleanup must cope with):

* A mutation takes effect when its operation finishes (``operation_seconds``, per kind): a deploy in
  flight is not yet in ``deployedModels``; an undeploy in flight still is.
* One mutating operation per endpoint at a time; deleting an endpoint that has deployed models, or a
  deploy in flight, is FAILED_PRECONDITION.
* Traffic splits (deploy, undeploy, PATCH) must name every deployed model that remains (``"0"`` is the
  model being deployed), use only its ids, and sum to 100 (empty once no model remains), else
  INVALID_ARGUMENT. Undeploying a model that carries traffic while others remain, without a split
  that takes its traffic away, is FAILED_PRECONDITION. Undeploying the last model empties the split.
* Unknown resources are NOT_FOUND; a user-chosen endpoint id must be 1-10 digits; labels follow the
  Google Cloud label rules; a ``:predict`` body over 1.5 MB is INVALID_ARGUMENT.
* Cancelling a running operation finishes it with ``error.code`` 1 (CANCELLED) and no effect.

Fault injection (from Python, or over HTTP when the emulator runs as ``vertex-loadtest emulator``):

* :meth:`~VertexEmulator.fail_requests`: the next N matching requests answer 429 / 503 / ...;
* :meth:`~VertexEmulator.fail_operations`: the next N operations of a kind finish with an ``error``;
* :meth:`~VertexEmulator.set_operation_seconds`: slow (or instant) operations, per kind;
* :meth:`~VertexEmulator.delete_externally`: "someone else" deletes an endpoint, now;
* :meth:`~VertexEmulator.on_request`: a hook run after each request of a kind (e.g. delete an
  endpoint externally right after the first ``undeployModel``).

``VertexEmulator.requests`` logs ``(method, path, kind, http_status)`` of every API request but
predictions (``VertexEmulator.predict_statuses`` counts those by HTTP status); a
request's ``kind`` is its method name (``getEndpoint``, ``listEndpoints``, ``deployModel``,
``getOperation``, ``cancelOperation``, ``predict``, ...).

Over HTTP (the admin API, outside ``/v1/``)::

    POST /_emulator/faults {
        "requests": [{"httpStatus": 503, "count": 2, "method": "GET", "pathRegex": "...", "kind": "..."}],
        "operations": [{"kind": "undeployModel", "count": 1, "status": "INTERNAL", "message": "..."}],
        "operationSeconds": {"*": 0.5, "deployModel": 5},
        "deleteExternally": ["projects/p/locations/l/endpoints/123"]}
    POST /_emulator/model-servers {"model": "projects/p/locations/l/models/1", "url": "http://127.0.0.1:8081"}
    POST /_emulator/pipeline-jobs {"name": "my-run", "state": "PIPELINE_STATE_RUNNING"}
    GET  /_emulator/state            -> {"endpoints": {...}, "models": {...}, "operations": [...]}

How ``:predict`` reaches a local model server (the rehearsal's contract)
-------------------------------------------------------------------------
Upload the model with an environment variable in its container spec naming the local server::

    model = {"displayName": "m", "containerSpec": {
        "imageUri": "local/model-server",          # not pulled; any string
        "predictRoute": "/predict",                 # optional
        "env": [{"name": "VERTEX_EMULATOR_MODEL_URL", "value": "http://127.0.0.1:8081"}]}}

or register it on the emulator side: ``emulator.register_model_server(model_name, url)`` (also
``POST /_emulator/model-servers`` with ``{"model": NAME, "url": URL}``); the registry wins. A
``:predict`` on an endpoint picks a deployed model by the traffic split (weighted), POSTs the request
body unchanged to ``URL + predictRoute`` (or ``URL`` as given when no ``predictRoute`` is set) and
answers the server's JSON plus ``deployedModelId``, ``model``, ``modelDisplayName`` and
``modelVersionId`` as Vertex does. ``:rawPredict`` forwards bytes and returns them unchanged. A
model server's HTTP error keeps its kind (429 -> 429 RESOURCE_EXHAUSTED, 503 -> 503 UNAVAILABLE,
other 4xx -> 400, other 5xx -> 500); an unreachable server (or a dropped connection) answers 503
UNAVAILABLE; a server slower than ``predict_timeout`` (60 s, like Vertex) answers 504
DEADLINE_EXCEEDED. The rehearsal's ``PredictionServer`` serves ``predictRoute`` ``/predict``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as _dt
import http.client
import itertools
import json
import random
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from vertex_loadtest.labels import is_valid_label_key, is_valid_label_value
from vertex_loadtest.vertex_clients import client_kwargs

LOOPBACK = "127.0.0.1"
MODEL_URL_ENV = "VERTEX_EMULATOR_MODEL_URL"
MAX_PREDICT_BYTES = int(1.5 * 1024 * 1024)
_TYPE_PREFIX = "type.googleapis.com/google.cloud.aiplatform.v1."

#: google.rpc.Code name -> (HTTP status, numeric code), as Google's REST front end maps them.
STATUS_CODES: dict[str, tuple[int, int]] = {
    "CANCELLED": (499, 1),
    "UNKNOWN": (500, 2),
    "INVALID_ARGUMENT": (400, 3),
    "DEADLINE_EXCEEDED": (504, 4),
    "NOT_FOUND": (404, 5),
    "ALREADY_EXISTS": (409, 6),
    "PERMISSION_DENIED": (403, 7),
    "RESOURCE_EXHAUSTED": (429, 8),
    "FAILED_PRECONDITION": (400, 9),
    "ABORTED": (409, 10),
    "UNIMPLEMENTED": (501, 12),
    "INTERNAL": (500, 13),
    "UNAVAILABLE": (503, 14),
    "UNAUTHENTICATED": (401, 16),
}
#: An HTTP status -> the google.rpc status Google answers with it (injected faults, model server errors).
_HTTP_TO_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_CODE_TO_STATUS = {code: name for name, (_, code) in STATUS_CODES.items()}

#: Operation kinds (also the ``kind`` of requests in the log and of hooks).
OPERATION_KINDS = (
    "createEndpoint",
    "deployModel",
    "undeployModel",
    "deleteEndpoint",
    "uploadModel",
    "deleteModel",
)
_METADATA_TYPES = {
    "createEndpoint": "CreateEndpointOperationMetadata",
    "deployModel": "DeployModelOperationMetadata",
    "undeployModel": "UndeployModelOperationMetadata",
    "deleteEndpoint": "DeleteOperationMetadata",
    "uploadModel": "UploadModelOperationMetadata",
    "deleteModel": "DeleteOperationMetadata",
}


class ApiError(Exception):
    """An error answered in Google's JSON shape."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def http_status(self) -> int:
        return STATUS_CODES[self.status][0]

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.http_status, "message": self.message, "status": self.status}}


def _now_rfc3339(timestamp: float | None = None) -> str:
    moment = _dt.datetime.fromtimestamp(time.time() if timestamp is None else timestamp, tz=_dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _numeric_id() -> str:
    return str(random.randint(10**18, 9 * 10**18))


@dataclass
class _Operation:
    name: str
    kind: str
    resource: str
    created: float
    finish_at: float
    apply: Callable[[], dict[str, Any] | None]
    response_type: str
    done: bool = False
    error: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    updated: float = 0.0

    def to_json(self) -> dict[str, Any]:
        generic = {
            "createTime": _now_rfc3339(self.created),
            "updateTime": _now_rfc3339(self.updated or self.created),
        }
        metadata: dict[str, Any] = {
            "@type": _TYPE_PREFIX + _METADATA_TYPES[self.kind],
            "genericMetadata": generic,
        }
        if self.kind == "deleteEndpoint" or self.kind == "deleteModel":
            metadata = {"@type": _TYPE_PREFIX + "DeleteOperationMetadata", "genericMetadata": generic}
        body: dict[str, Any] = {"name": self.name, "metadata": metadata, "done": self.done}
        if self.done and self.error is not None:
            body["error"] = self.error
        elif self.done:
            body["response"] = {"@type": self.response_type, **(self.response or {})}
        return body


@dataclass
class _RequestFault:
    http_status: int
    remaining: int
    method: str | None
    path_regex: re.Pattern[str] | None
    kind: str | None


@dataclass
class _OperationFault:
    kind: str
    remaining: int
    status: str
    message: str


@dataclass
class _State:
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, _Operation] = field(default_factory=dict)
    pipeline_jobs: dict[str, str] = field(default_factory=dict)
    model_servers: dict[str, str] = field(default_factory=dict)


class VertexEmulator:
    """The emulator server; start with ``with VertexEmulator() as emulator`` or :meth:`start`.

    Args:
        port: TCP port on 127.0.0.1 (0 picks a free one).
        operation_seconds: How long every long-running operation takes (0 = done when created).
        operation_seconds_by_kind: Per-kind override, e.g. ``{"deployModel": 2.0}``.
        predict_timeout: Seconds the emulator waits for a model server (Vertex: 60).
        seed: Seeds the id generator and the traffic-split draw (reproducible runs).
    """

    def __init__(
        self,
        port: int = 0,
        *,
        operation_seconds: float = 0.0,
        operation_seconds_by_kind: dict[str, float] | None = None,
        predict_timeout: float = 60.0,
        seed: int | None = None,
    ) -> None:
        self._requested_port = port
        self.operation_seconds = operation_seconds
        self.operation_seconds_by_kind: dict[str, float] = dict(operation_seconds_by_kind or {})
        self.predict_timeout = predict_timeout
        self._random = random.Random(seed)
        self._lock = threading.RLock()
        self._state = _State()
        self._request_faults: list[_RequestFault] = []
        self._operation_faults: list[_OperationFault] = []
        self._hooks: list[tuple[str, Callable[[VertexEmulator, dict[str, Any]], None]]] = []
        self.requests: list[tuple[str, str, str, int]] = []
        #: HTTP status -> count of ``:predict``/``:rawPredict`` answers (kept out of ``requests``, which
        #: a long load test would grow without bound).
        self.predict_statuses: dict[int, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._op_counter = itertools.count(1)

    # ----------------------------------------------------------------------------------- lifecycle
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.server_address[1])

    @property
    def api_endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: pass as ``client_options={"api_endpoint": ...}``."""
        return f"http://{LOOPBACK}:{self.port}"

    url = api_endpoint

    def start(self) -> VertexEmulator:
        if self._server is not None:
            return self
        emulator = self

        class Handler(_Handler):
            pass

        Handler.emulator = emulator
        server = _QuietServer((LOOPBACK, self._requested_port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="vertex-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> VertexEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serves until KeyboardInterrupt (the ``vertex-loadtest emulator`` command)."""
        self.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # ----------------------------------------------------------------------------- fault injection
    def fail_requests(
        self,
        http_status: int = 503,
        count: int = 1,
        *,
        method: str | None = None,
        path_regex: str | None = None,
        kind: str | None = None,
    ) -> None:
        """The next ``count`` API requests matching (method, path regex, kind) answer ``http_status``."""
        with self._lock:
            self._request_faults.append(
                _RequestFault(
                    http_status,
                    count,
                    method.upper() if method else None,
                    re.compile(path_regex) if path_regex else None,
                    kind,
                )
            )

    def fail_operations(
        self, kind: str, count: int = 1, *, status: str = "INTERNAL", message: str = "Injected failure."
    ) -> None:
        """The next ``count`` operations of ``kind`` finish with ``error`` (and without their effect)."""
        if kind not in OPERATION_KINDS:
            raise ValueError(f"unknown operation kind {kind!r}; known: {', '.join(OPERATION_KINDS)}")
        with self._lock:
            self._operation_faults.append(_OperationFault(kind, count, status, message))

    def set_operation_seconds(self, seconds: float, kind: str | None = None) -> None:
        """How long operations (of ``kind``, or all) take from now on."""
        with self._lock:
            if kind is None:
                self.operation_seconds = seconds
                self.operation_seconds_by_kind.clear()
            else:
                self.operation_seconds_by_kind[kind] = seconds

    def delete_externally(self, name: str) -> None:
        """Someone else deletes endpoint or model ``name`` (models undeployed with it), immediately."""
        with self._lock:
            self._state.endpoints.pop(name, None)
            self._state.models.pop(name, None)

    def on_request(self, kind: str, hook: Callable[[VertexEmulator, dict[str, Any]], None]) -> None:
        """After each request of ``kind``: ``hook(emulator, {method, path, kind, status, body})``."""
        with self._lock:
            self._hooks.append((kind, hook))

    def set_pipeline_job_state(self, job_name: str, state: str) -> None:
        """Makes ``GET .../pipelineJobs/{job_name}`` answer ``state`` (e.g. ``PIPELINE_STATE_RUNNING``)."""
        with self._lock:
            self._state.pipeline_jobs[job_name.rsplit("/", 1)[-1]] = state

    def register_model_server(self, model: str, url: str) -> None:
        """Routes ``:predict`` for deployed ``model`` (resource name) to ``url``."""
        with self._lock:
            self._state.model_servers[model] = url

    # ------------------------------------------------------------------------------------ inspection
    def endpoints(self) -> dict[str, dict[str, Any]]:
        """A snapshot of every endpoint (after finishing due operations), keyed by resource name."""
        with self._lock:
            self._advance()
            return copy.deepcopy(self._state.endpoints)

    def models(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            self._advance()
            return copy.deepcopy(self._state.models)

    def operations(self) -> list[dict[str, Any]]:
        with self._lock:
            self._advance()
            return [op.to_json() for op in self._state.operations.values()]

    # ------------------------------------------------------------------------------ request routing
    def handle(self, method: str, raw_path: str, body: bytes) -> tuple[int, dict[str, Any] | bytes]:
        """Answers one request: (HTTP status, JSON body or raw bytes)."""
        parsed = urllib.parse.urlsplit(raw_path)
        path = urllib.parse.unquote(parsed.path)
        if path.startswith("/ui/"):  # the LRO transport's first URI binding is /ui/...; same resources
            path = "/v1/" + path[len("/ui/") :]
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        if path.startswith("/_emulator/"):
            return self._admin(method, path, body)
        kind = _kind_of(method, path)
        try:
            with self._lock:
                self._advance()
                self._raise_injected(method, path, kind)
            if kind in ("predict", "rawPredict"):
                status, payload = 200, self._predict(path, body, raw=kind == "rawPredict")
            else:
                with self._lock:
                    payload = self._route(method, path, query, _json_body(body))
                status = 200
        except ApiError as error:
            status, payload = error.http_status, error.body()
        self._after(method, path, kind, status, body)
        return status, payload

    def _after(self, method: str, path: str, kind: str, status: int, body: bytes) -> None:
        with self._lock:
            if kind in ("predict", "rawPredict"):
                self.predict_statuses[status] = self.predict_statuses.get(status, 0) + 1
            else:
                self.requests.append((method, path, kind, status))
            hooks = [hook for hook_kind, hook in self._hooks if hook_kind == kind]
        info = {"method": method, "path": path, "kind": kind, "status": status, "body": body}
        for hook in hooks:
            hook(self, info)

    def _raise_injected(self, method: str, path: str, kind: str) -> None:
        for fault in self._request_faults:
            if fault.remaining <= 0:
                continue
            if fault.method and fault.method != method:
                continue
            if fault.path_regex and not fault.path_regex.search(path):
                continue
            if fault.kind and fault.kind != kind:
                continue
            fault.remaining -= 1
            status = _HTTP_TO_STATUS.get(
                fault.http_status, "INTERNAL" if fault.http_status >= 500 else "INVALID_ARGUMENT"
            )
            messages = {
                "RESOURCE_EXHAUSTED": "Quota exceeded (injected 429). Please retry.",
                "UNAVAILABLE": "The service is currently unavailable (injected 503).",
            }
            raise ApiError(status, messages.get(status, f"Injected {fault.http_status} {status}."))

    def _route(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        loc = r"(projects/[^/:]+/locations/[^/:]+)"
        routes: list[tuple[str, str, Callable[..., dict[str, Any]]]] = [
            ("POST", rf"/v1/{loc}/endpoints", self._create_endpoint),
            ("GET", rf"/v1/{loc}/endpoints", self._list_endpoints),
            ("GET", rf"/v1/({loc[1:-1]}/endpoints/[^/:]+)", self._get_endpoint),
            ("PATCH", rf"/v1/({loc[1:-1]}/endpoints/[^/:]+)", self._patch_endpoint),
            ("DELETE", rf"/v1/({loc[1:-1]}/endpoints/[^/:]+)", self._delete_endpoint),
            ("POST", rf"/v1/({loc[1:-1]}/endpoints/[^/:]+):deployModel", self._deploy_model),
            ("POST", rf"/v1/({loc[1:-1]}/endpoints/[^/:]+):undeployModel", self._undeploy_model),
            ("POST", rf"/v1/{loc}/models:upload", self._upload_model),
            ("GET", rf"/v1/{loc}/models", self._list_models),
            ("GET", rf"/v1/({loc[1:-1]}/models/[^/:]+)", self._get_model),
            ("DELETE", rf"/v1/({loc[1:-1]}/models/[^/:]+)", self._delete_model),
            ("GET", rf"/v1/({loc[1:-1]}/pipelineJobs/[^/:]+)", self._get_pipeline_job),
            ("GET", rf"/v1/({loc[1:-1]}(?:/[^/:]+/[^/:]+)*/operations/[^/:]+)", self._get_operation),
            (
                "POST",
                rf"/v1/({loc[1:-1]}(?:/[^/:]+/[^/:]+)*/operations/[^/:]+):cancel",
                self._cancel_operation,
            ),
            ("POST", rf"/v1/({loc[1:-1]}(?:/[^/:]+/[^/:]+)*/operations/[^/:]+):wait", self._wait_operation),
            ("DELETE", rf"/v1/({loc[1:-1]}(?:/[^/:]+/[^/:]+)*/operations/[^/:]+)", self._delete_operation),
            ("GET", rf"/v1/({loc[1:-1]}(?:/[^/:]+/[^/:]+)*)/operations", self._list_operations),
        ]
        path_matched = False
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match is None:
                continue
            path_matched = True
            if route_method == method:
                return handler(match.group(1), query, body)
        if path_matched:
            raise ApiError("UNIMPLEMENTED", f"Method {method} is not implemented for {path} by the emulator.")
        raise ApiError("NOT_FOUND", f"The emulator does not serve {method} {path}.")

    # ----------------------------------------------------------------------------------- operations
    def _seconds_for(self, kind: str) -> float:
        return float(self.operation_seconds_by_kind.get(kind, self.operation_seconds))

    def _start_operation(
        self, kind: str, resource: str, apply: Callable[[], dict[str, Any] | None], response_type: str
    ) -> dict[str, Any]:
        now = time.time()
        name = f"{resource}/operations/{_numeric_id()}"
        operation = _Operation(
            name=name,
            kind=kind,
            resource=resource,
            created=now,
            finish_at=now + self._seconds_for(kind),
            apply=apply,
            response_type=response_type,
        )
        self._state.operations[name] = operation
        self._advance()
        return operation.to_json()

    def _advance(self) -> None:
        """Finishes every operation whose time has come, in the order they were due."""
        now = time.time()
        due = sorted(
            (op for op in self._state.operations.values() if not op.done and op.finish_at <= now),
            key=lambda op: op.finish_at,
        )
        for operation in due:
            self._finish(operation)

    def _finish(self, operation: _Operation) -> None:
        operation.done = True
        operation.updated = time.time()
        for fault in self._operation_faults:
            if fault.kind == operation.kind and fault.remaining > 0:
                fault.remaining -= 1
                operation.error = {"code": STATUS_CODES[fault.status][1], "message": fault.message}
                return
        try:
            operation.response = operation.apply() or {}
        except ApiError as error:
            operation.error = {"code": STATUS_CODES[error.status][1], "message": error.message}

    def _operation(self, name: str) -> _Operation:
        operation = self._state.operations.get(name)
        if operation is None:
            raise ApiError("NOT_FOUND", f"Operation {name} not found.")
        return operation

    def _get_operation(self, name: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        return self._operation(name).to_json()

    def _cancel_operation(self, name: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        operation = self._operation(name)
        if not operation.done:
            operation.done = True
            operation.updated = time.time()
            operation.error = {"code": 1, "message": "Operation was cancelled."}
        return {}

    def _wait_operation(self, name: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        operation = self._operation(name)
        timeout = float(str(body.get("timeout", "10s")).rstrip("s") or 10)
        deadline = time.time() + min(timeout, 10.0)
        while not operation.done and time.time() < deadline:
            self._lock.release()
            try:
                time.sleep(min(0.02, max(0.0, operation.finish_at - time.time())))
            finally:
                self._lock.acquire()
            self._advance()
        return operation.to_json()

    def _delete_operation(self, name: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        self._operation(name)
        del self._state.operations[name]
        return {}

    def _list_operations(self, name: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        operations = [op.to_json() for op in self._state.operations.values() if op.resource.startswith(name)]
        wanted = query.get("filter", "").replace(" ", "")
        if wanted in ("done=false", "done=true"):
            operations = [op for op in operations if op["done"] == (wanted == "done=true")]
        return {"operations": operations}

    def _in_flight(self, resource: str, kinds: tuple[str, ...]) -> list[_Operation]:
        return [
            op
            for op in self._state.operations.values()
            if op.resource == resource and not op.done and op.kind in kinds
        ]

    # ------------------------------------------------------------------------------------ endpoints
    def _endpoint(self, name: str) -> dict[str, Any]:
        endpoint = self._state.endpoints.get(name)
        if endpoint is None:
            raise ApiError("NOT_FOUND", f'Endpoint "{name}" not found.')
        return endpoint

    def _create_endpoint(self, parent: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        endpoint_id = query.get("endpointId", "") or body.get("endpointId", "")
        if endpoint_id and not re.fullmatch(r"[1-9][0-9]{0,9}", endpoint_id):
            raise ApiError(
                "INVALID_ARGUMENT",
                f"endpoint_id {endpoint_id!r} is invalid: it must be 1-10 digits, not starting with 0.",
            )
        if not body.get("displayName"):
            raise ApiError("INVALID_ARGUMENT", "Endpoint display_name is required.")
        _validate_labels(body.get("labels", {}))
        name = f"{parent}/endpoints/{endpoint_id or _numeric_id()}"
        if name in self._state.endpoints:
            raise ApiError("ALREADY_EXISTS", f'Endpoint "{name}" already exists.')
        now = _now_rfc3339()
        endpoint = {
            "name": name,
            "displayName": body["displayName"],
            "description": body.get("description", ""),
            "labels": dict(body.get("labels", {})),
            "deployedModels": [],
            "trafficSplit": {},
            "createTime": now,
            "updateTime": now,
            "etag": _numeric_id(),
        }

        def apply() -> dict[str, Any]:
            self._state.endpoints[name] = endpoint
            return copy.deepcopy(endpoint)

        return self._start_operation("createEndpoint", name, apply, _TYPE_PREFIX + "Endpoint")

    def _list_endpoints(self, parent: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        matches = _compile_filter(query.get("filter", ""), id_field="endpoint")
        items = [
            copy.deepcopy(ep)
            for name, ep in sorted(self._state.endpoints.items(), key=lambda item: item[1]["createTime"])
            if name.startswith(parent + "/") and matches(ep)
        ]
        page, token = _paginate(items, query)
        return {"endpoints": page, **({"nextPageToken": token} if token else {})}

    def _get_endpoint(self, name: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(self._endpoint(name))

    def _patch_endpoint(self, name: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        mask = [p.strip() for p in query.get("updateMask", "").split(",") if p.strip()]
        fields = {"display_name": "displayName", "traffic_split": "trafficSplit"}
        mask = [fields.get(p, p) for p in mask] or [
            k for k in body if k in ("displayName", "description", "labels", "trafficSplit")
        ]
        for path in mask:
            if path == "trafficSplit":
                split = {k: int(v) for k, v in body.get("trafficSplit", {}).items()}
                _validate_split(split, [dm["id"] for dm in endpoint["deployedModels"]])
                endpoint["trafficSplit"] = split
            elif path == "labels":
                _validate_labels(body.get("labels", {}))
                endpoint["labels"] = dict(body.get("labels", {}))
            elif path in ("displayName", "description"):
                endpoint[path] = body.get(path, "")
            else:
                raise ApiError("INVALID_ARGUMENT", f"update_mask path {path!r} is not supported.")
        endpoint["updateTime"] = _now_rfc3339()
        return copy.deepcopy(endpoint)

    def _refuse_if_busy(self, name: str) -> None:
        busy = self._in_flight(name, ("deployModel", "undeployModel", "deleteEndpoint"))
        if busy:
            raise ApiError(
                "FAILED_PRECONDITION",
                f'Endpoint "{name}" has an operation in progress ({busy[0].name}); retry after it finishes.',
            )

    def _delete_endpoint(self, name: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        if endpoint["deployedModels"] or self._in_flight(name, ("deployModel",)):
            raise ApiError(
                "FAILED_PRECONDITION",
                f'The Endpoint "{name}" has deployed or being deployed DeployedModel(s). '
                "Undeploy them before deleting the Endpoint.",
            )
        self._refuse_if_busy(name)

        def apply() -> dict[str, Any]:
            current = self._endpoint(name)
            if current["deployedModels"]:
                raise ApiError("FAILED_PRECONDITION", f'The Endpoint "{name}" has deployed DeployedModel(s).')
            del self._state.endpoints[name]
            return {}

        return self._start_operation(
            "deleteEndpoint", name, apply, "type.googleapis.com/google.protobuf.Empty"
        )

    def _deploy_model(self, name: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        requested = body.get("deployedModel") or {}
        model_name = requested.get("model", "")
        model = self._state.models.get(model_name.split("@", 1)[0])
        if model is None:
            raise ApiError("NOT_FOUND", f'Model "{model_name}" not found.')
        if not (requested.get("dedicatedResources") or requested.get("automaticResources")):
            raise ApiError(
                "INVALID_ARGUMENT", "DeployedModel needs dedicated_resources or automatic_resources."
            )
        self._refuse_if_busy(name)
        split = {k: int(v) for k, v in (body.get("trafficSplit") or {}).items()}
        if split:
            _validate_split(split, [dm["id"] for dm in endpoint["deployedModels"]] + ["0"])
        deployed_id = requested.get("id") or _numeric_id()
        deployed = {
            **copy.deepcopy(requested),
            "id": deployed_id,
            "model": model["name"],
            "modelVersionId": model.get("versionId", "1"),
            "displayName": requested.get("displayName") or model["displayName"],
            "createTime": _now_rfc3339(),
        }

        def apply() -> dict[str, Any]:
            current = self._endpoint(name)
            current["deployedModels"].append(deployed)
            if split:
                current["trafficSplit"] = {(deployed_id if k == "0" else k): v for k, v in split.items()}
            current["updateTime"] = _now_rfc3339()
            return {"deployedModel": copy.deepcopy(deployed)}

        return self._start_operation("deployModel", name, apply, _TYPE_PREFIX + "DeployModelResponse")

    def _undeploy_model(self, name: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        deployed_id = str(body.get("deployedModelId", ""))
        ids = [dm["id"] for dm in endpoint["deployedModels"]]
        if deployed_id not in ids:
            raise ApiError("NOT_FOUND", f'DeployedModel "{deployed_id}" not found in Endpoint "{name}".')
        self._refuse_if_busy(name)
        remaining = [i for i in ids if i != deployed_id]
        split = {k: int(v) for k, v in (body.get("trafficSplit") or {}).items()}
        if split:
            if split.get(deployed_id, 0) != 0:
                raise ApiError(
                    "INVALID_ARGUMENT",
                    f"traffic_split must assign 0% to the DeployedModel being undeployed ({deployed_id}).",
                )
            split.pop(deployed_id, None)
            _validate_split(split, remaining)
        elif remaining and endpoint["trafficSplit"].get(deployed_id, 0) > 0:
            raise ApiError(
                "FAILED_PRECONDITION",
                f'DeployedModel "{deployed_id}" receives {endpoint["trafficSplit"][deployed_id]}% of the '
                f'traffic of Endpoint "{name}"; provide a traffic_split that moves it to the remaining '
                "DeployedModels.",
            )

        def apply() -> dict[str, Any]:
            current = self._endpoint(name)
            current["deployedModels"] = [dm for dm in current["deployedModels"] if dm["id"] != deployed_id]
            if not current["deployedModels"]:
                current["trafficSplit"] = {}
            elif split:
                current["trafficSplit"] = dict(split)
            else:
                current["trafficSplit"].pop(deployed_id, None)
            current["updateTime"] = _now_rfc3339()
            return {}

        return self._start_operation("undeployModel", name, apply, _TYPE_PREFIX + "UndeployModelResponse")

    # --------------------------------------------------------------------------------------- models
    def _model(self, name: str) -> dict[str, Any]:
        model = self._state.models.get(name.split("@", 1)[0])
        if model is None:
            raise ApiError("NOT_FOUND", f'Model "{name}" not found.')
        return model

    def _upload_model(self, parent: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        requested = body.get("model") or {}
        if not requested.get("displayName"):
            raise ApiError("INVALID_ARGUMENT", "Model display_name is required.")
        _validate_labels(requested.get("labels", {}))
        model_id = body.get("modelId") or _numeric_id()
        name = f"{parent}/models/{model_id}"
        if name in self._state.models:
            raise ApiError("ALREADY_EXISTS", f'Model "{name}" already exists.')
        now = _now_rfc3339()
        model = {
            **copy.deepcopy(requested),
            "name": name,
            "versionId": "1",
            "versionAliases": ["default"],
            "labels": dict(requested.get("labels", {})),
            "createTime": now,
            "updateTime": now,
            "versionCreateTime": now,
            "versionUpdateTime": now,
            "etag": _numeric_id(),
        }

        def apply() -> dict[str, Any]:
            self._state.models[name] = model
            return {"model": name, "modelVersionId": "1"}

        return self._start_operation("uploadModel", name, apply, _TYPE_PREFIX + "UploadModelResponse")

    def _list_models(self, parent: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        matches = _compile_filter(query.get("filter", ""), id_field="model")
        items = [
            copy.deepcopy(m)
            for name, m in sorted(self._state.models.items(), key=lambda item: item[1]["createTime"])
            if name.startswith(parent + "/") and matches(m)
        ]
        page, token = _paginate(items, query)
        return {"models": page, **({"nextPageToken": token} if token else {})}

    def _get_model(self, name: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        model = copy.deepcopy(self._model(name))
        model["deployedModels"] = [
            {"endpoint": ep["name"], "deployedModelId": dm["id"]}
            for ep in self._state.endpoints.values()
            for dm in ep["deployedModels"]
            if dm["model"] == model["name"]
        ]
        if not model["deployedModels"]:
            del model["deployedModels"]
        return model

    def _delete_model(self, name: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        model = self._model(name)
        users = [
            ep["name"]
            for ep in self._state.endpoints.values()
            for dm in ep["deployedModels"]
            if dm["model"] == model["name"]
        ]
        if users:
            raise ApiError(
                "FAILED_PRECONDITION",
                f'Model "{model["name"]}" is deployed to Endpoint(s) {", ".join(users)}; undeploy it first.',
            )

        def apply() -> dict[str, Any]:
            self._state.models.pop(model["name"], None)
            return {}

        return self._start_operation(
            "deleteModel", model["name"], apply, "type.googleapis.com/google.protobuf.Empty"
        )

    def _get_pipeline_job(self, name: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        job_id = name.rsplit("/", 1)[-1]
        state = self._state.pipeline_jobs.get(job_id)
        if state is None:
            raise ApiError("NOT_FOUND", f'PipelineJob "{name}" not found.')
        return {"name": name, "displayName": job_id, "state": state}

    # -------------------------------------------------------------------------------------- predict
    def _predict(self, path: str, body: bytes, *, raw: bool) -> dict[str, Any] | bytes:
        endpoint_name = path[len("/v1/") :].rsplit(":", 1)[0]
        if len(body) > MAX_PREDICT_BYTES:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"Request payload size {len(body)} bytes exceeds the limit of "
                f"{MAX_PREDICT_BYTES} bytes (1.5 MB).",
            )
        with self._lock:
            endpoint = copy.deepcopy(self._endpoint(endpoint_name))
            deployed = self._pick_deployed_model(endpoint)
            model = copy.deepcopy(self._state.models.get(deployed["model"], {}))
            url = self._state.model_servers.get(deployed["model"]) or _model_url(model)
        if not url:
            raise ApiError(
                "FAILED_PRECONDITION",
                f'Model "{deployed["model"]}" has no local server: set {MODEL_URL_ENV} in its '
                "containerSpec.env or register_model_server().",
            )
        route = (model.get("containerSpec") or {}).get("predictRoute", "")
        target = url.rstrip("/") + route if route else url
        request = urllib.request.Request(
            target, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.predict_timeout) as response:
                answer = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:2000]
            status = _HTTP_TO_STATUS.get(
                error.code, "INVALID_ARGUMENT" if 400 <= error.code < 500 else "INTERNAL"
            )
            raise ApiError(status, f"The model server answered {error.code}: {detail}") from error
        except TimeoutError as error:
            raise ApiError(
                "DEADLINE_EXCEEDED", f"The model server did not answer within {self.predict_timeout}s."
            ) from error
        except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as error:
            if isinstance(getattr(error, "reason", None), TimeoutError):
                raise ApiError(
                    "DEADLINE_EXCEEDED", f"The model server did not answer within {self.predict_timeout}s."
                ) from error
            raise ApiError("UNAVAILABLE", f"The model server at {target} is unreachable: {error}") from error
        if raw:
            return answer
        try:
            payload = json.loads(answer or b"{}")
        except ValueError as error:
            raise ApiError("INTERNAL", f"The model server answered non-JSON: {answer[:200]!r}") from error
        if not isinstance(payload, dict):
            payload = {"predictions": payload}
        payload.update(
            deployedModelId=deployed["id"],
            model=deployed["model"],
            modelDisplayName=model.get("displayName", ""),
            modelVersionId=deployed.get("modelVersionId", "1"),
        )
        return payload

    def _pick_deployed_model(self, endpoint: dict[str, Any]) -> dict[str, Any]:
        by_id = {dm["id"]: dm for dm in endpoint["deployedModels"]}
        weights = [(i, w) for i, w in endpoint["trafficSplit"].items() if w > 0 and i in by_id]
        if not weights:
            raise ApiError(
                "FAILED_PRECONDITION",
                f'Endpoint "{endpoint["name"]}" has no DeployedModel receiving traffic.',
            )
        pick = self._random.uniform(0, sum(w for _, w in weights))
        for deployed_id, weight in weights:
            pick -= weight
            if pick <= 0:
                return by_id[deployed_id]
        return by_id[weights[-1][0]]

    # ---------------------------------------------------------------------------------------- admin
    def _admin(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        data = _json_body(body)
        try:
            if method == "GET" and path == "/_emulator/state":
                return 200, {
                    "endpoints": self.endpoints(),
                    "models": self.models(),
                    "operations": self.operations(),
                }
            if method == "POST" and path == "/_emulator/faults":
                for spec in data.get("requests", []):
                    self.fail_requests(
                        int(spec.get("httpStatus", 503)),
                        int(spec.get("count", 1)),
                        method=spec.get("method"),
                        path_regex=spec.get("pathRegex"),
                        kind=spec.get("kind"),
                    )
                for spec in data.get("operations", []):
                    self.fail_operations(
                        spec["kind"],
                        int(spec.get("count", 1)),
                        status=spec.get("status", "INTERNAL"),
                        message=spec.get("message", "Injected failure."),
                    )
                for kind, seconds in data.get("operationSeconds", {}).items():
                    self.set_operation_seconds(float(seconds), None if kind == "*" else kind)
                for name in data.get("deleteExternally", []):
                    self.delete_externally(name)
                return 200, {}
            if method == "POST" and path == "/_emulator/model-servers":
                self.register_model_server(data["model"], data["url"])
                return 200, {}
            if method == "POST" and path == "/_emulator/pipeline-jobs":
                self.set_pipeline_job_state(data["name"], data["state"])
                return 200, {}
        except (KeyError, ValueError) as error:
            return 400, ApiError("INVALID_ARGUMENT", f"bad admin request: {error}").body()
        return 404, ApiError("NOT_FOUND", f"no admin route {method} {path}").body()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-request (a killed process) is not the emulator's error."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    emulator: VertexEmulator
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every keep-alive response (measured), which a load test sees.
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload = self.emulator.handle(self.command, self.path, body)
        if isinstance(payload, bytes):
            data, content_type = payload, "application/octet-stream"
        else:
            data, content_type = json.dumps(payload).encode("utf-8"), "application/json; charset=UTF-8"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read emulator.requests
        pass


# ------------------------------------------------------------------------------------------- helpers
def _kind_of(method: str, path: str) -> str:
    if ":" in path.rsplit("/", 1)[-1]:
        verb = path.rsplit(":", 1)[-1]
        if verb in ("deployModel", "undeployModel", "predict", "rawPredict", "cancel", "wait"):
            return verb if verb not in ("cancel", "wait") else f"{verb}Operation"
        if verb == "upload":
            return "uploadModel"
        return verb
    segments = path.strip("/").split("/")
    collection = segments[-2] if len(segments) % 2 == 1 else segments[-1]
    is_item = len(segments) % 2 == 1  # /v1/projects/p/locations/l/endpoints/e -> odd count with "v1"
    noun = {
        "endpoints": "Endpoint",
        "models": "Model",
        "operations": "Operation",
        "pipelineJobs": "PipelineJob",
    }.get(collection, collection)
    if not is_item:
        return {"GET": f"list{noun}s", "POST": f"create{noun}"}.get(method, method.lower() + noun)
    return {"GET": "get", "DELETE": "delete", "PATCH": "update"}.get(method, method.lower()) + noun


def _json_body(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError as error:
        raise ApiError("INVALID_ARGUMENT", f"Invalid JSON payload received: {error}") from error
    return data if isinstance(data, dict) else {}


def _validate_labels(labels: dict[str, Any]) -> None:
    for key, value in labels.items():
        if not is_valid_label_key(key):
            raise ApiError("INVALID_ARGUMENT", f"Label key {key!r} is invalid: use [a-z][a-z0-9_-]{{0,62}}.")
        if not isinstance(value, str) or not is_valid_label_value(value):
            raise ApiError(
                "INVALID_ARGUMENT",
                f"Label value {value!r} of key {key!r} is invalid: use [a-z0-9_-]{{0,63}}.",
            )


def _validate_split(split: dict[str, int], deployed_ids: list[str]) -> None:
    unknown = sorted(set(split) - set(deployed_ids))
    if unknown:
        raise ApiError(
            "INVALID_ARGUMENT",
            f"traffic_split names DeployedModel(s) {unknown} that are not on the Endpoint.",
        )
    if any(v < 0 or v > 100 for v in split.values()):
        raise ApiError("INVALID_ARGUMENT", "traffic_split percentages must be between 0 and 100.")
    if not deployed_ids:
        if split:
            raise ApiError("INVALID_ARGUMENT", "traffic_split must be empty when no DeployedModel remains.")
        return
    missing = sorted(set(deployed_ids) - set(split))
    if missing:
        raise ApiError("INVALID_ARGUMENT", f"traffic_split must name every DeployedModel; missing {missing}.")
    total = sum(split.values())
    if total != 100:
        raise ApiError("INVALID_ARGUMENT", f"traffic_split percentages must add up to 100, not {total}.")


_TERM = re.compile(
    r"""^(?:
        labels\.(?P<lkey>"[^"]+"|[A-Za-z0-9_-]+)\s*(?P<lop>=|!=|:)\s*(?P<lval>"[^"]*"|\*|[A-Za-z0-9_-]*)
      | labels\s*:\s*(?P<hkey>"[^"]+"|[A-Za-z0-9_-]+)
      | (?P<field>display_name|displayName|endpoint|model)\s*(?P<fop>=|!=)\s*(?P<fval>"[^"]*"|[A-Za-z0-9_.-]+)
    )$""",
    re.VERBOSE,
)


def _compile_filter(text: str, *, id_field: str) -> Callable[[dict[str, Any]], bool]:
    """Compiles the subset of Vertex's list filter the emulator supports; others are INVALID_ARGUMENT."""
    terms = [t.strip() for t in re.split(r"\s+AND\s+", text.strip()) if t.strip()] if text.strip() else []
    # Each check: (what, name, operator, value); what is "label" or "field".
    checks: list[tuple[str, str, str, str]] = []
    for term in terms:
        match = _TERM.match(term)
        if match is None:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"Unsupported filter term {term!r} (the emulator supports labels, "
                f"display_name and {id_field}, joined by AND).",
            )
        if match["lkey"]:
            raw = match["lval"]
            operator = "exists" if match["lop"] == ":" and raw == "*" else match["lop"].replace(":", "=")
            checks.append(("label", match["lkey"].strip('"'), operator, raw.strip('"')))
        elif match["hkey"]:
            checks.append(("label", match["hkey"].strip('"'), "exists", ""))
        else:
            name = "displayName" if match["field"] in ("display_name", "displayName") else match["field"]
            if name not in ("displayName", id_field):
                raise ApiError("INVALID_ARGUMENT", f"Unsupported filter field {match['field']!r}.")
            checks.append(("field", name, match["fop"], match["fval"].strip('"')))

    def matches(resource: dict[str, Any]) -> bool:
        for what, name, operator, value in checks:
            if what == "label":
                labels = resource.get("labels", {})
                if operator == "exists":
                    ok = name in labels
                else:
                    ok = (labels.get(name) == value) == (operator == "=")
            else:
                actual = (
                    resource.get("displayName", "")
                    if name == "displayName"
                    else resource["name"].rsplit("/", 1)[-1]
                )
                ok = (actual == value) == (operator == "=")
            if not ok:
                return False
        return True

    return matches


def _paginate(items: list[dict[str, Any]], query: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
    size = int(query.get("pageSize") or 0) or 100
    start = int(query.get("pageToken") or 0)
    page = items[start : start + size]
    return page, str(start + size) if start + size < len(items) else ""


def _model_url(model: dict[str, Any]) -> str:
    for variable in (model.get("containerSpec") or {}).get("env", []):
        if variable.get("name") == MODEL_URL_ENV:
            return str(variable.get("value", ""))
    return ""


# ------------------------------------------------------------------------------------ client helpers
def deploy_local_model(
    api_endpoint: str,
    *,
    project: str,
    location: str,
    model_url: str,
    labels: dict[str, str] | None = None,
    display_name: str = "loadtest-endpoint",
    machine_type: str = "n1-standard-4",
    predict_route: str = "/predict",
    timeout: float = 60.0,
) -> dict[str, str]:
    """Uploads a model served at ``model_url``, creates a labelled endpoint, deploys it with 100% traffic.

    What the rehearsal does instead of Google Cloud Pipeline Components' upload/create/deploy ops
    (container components, which ``kfp.local.SubprocessRunner`` cannot run). Loopback emulator only.

    Returns:
        ``{"endpoint": name, "model": name, "deployed_model_id": id}``.
    """
    from google.cloud import aiplatform_v1

    kwargs = client_kwargs(api_endpoint)
    parent = f"projects/{project}/locations/{location}"
    model = {
        "display_name": display_name,
        "labels": labels or {},
        "container_spec": {
            "image_uri": "local/model-server",
            "predict_route": predict_route,
            "env": [{"name": MODEL_URL_ENV, "value": model_url}],
        },
    }
    models = aiplatform_v1.ModelServiceClient(**kwargs)
    model_name = (
        models.upload_model(parent=parent, model=aiplatform_v1.Model(model)).result(timeout=timeout).model
    )
    endpoints = aiplatform_v1.EndpointServiceClient(**kwargs)
    endpoint = endpoints.create_endpoint(
        parent=parent, endpoint=aiplatform_v1.Endpoint(display_name=display_name, labels=labels or {})
    ).result(timeout=timeout)
    deployed = endpoints.deploy_model(
        endpoint=endpoint.name,
        deployed_model=aiplatform_v1.DeployedModel(
            {
                "model": model_name,
                "display_name": display_name,
                "dedicated_resources": {
                    "machine_spec": {"machine_type": machine_type},
                    "min_replica_count": 1,
                    "max_replica_count": 1,
                },
            }
        ),
        traffic_split={"0": 100},
    ).result(timeout=timeout)
    return {"endpoint": endpoint.name, "model": model_name, "deployed_model_id": deployed.deployed_model.id}


@contextlib.contextmanager
def running_emulator(**kwargs: Any) -> Iterator[VertexEmulator]:
    """``with running_emulator(operation_seconds=0.5) as emulator:``, like ``with VertexEmulator(...)``."""
    with VertexEmulator(**kwargs) as emulator:
        yield emulator


def serve(args: argparse.Namespace) -> int:
    """``vertex-loadtest emulator --port N``: serves on 127.0.0.1 until interrupted."""
    from vertex_loadtest.errors import BadInput

    by_kind = {}
    for item in getattr(args, "operation_seconds_for", None) or []:
        kind, _, seconds = item.partition("=")
        try:
            if kind not in OPERATION_KINDS:
                raise ValueError(kind)
            by_kind[kind] = float(seconds)
        except ValueError:
            raise BadInput(
                f"--operation-seconds-for {item!r}: write KIND=SECONDS, "
                f"KIND one of {', '.join(OPERATION_KINDS)}"
            ) from None
    emulator = VertexEmulator(
        args.port, operation_seconds=args.operation_seconds, operation_seconds_by_kind=by_kind
    ).start()
    print(f"Vertex AI emulator on {emulator.api_endpoint} (Ctrl-C stops it)", flush=True)
    emulator.serve_forever()
    return 0
