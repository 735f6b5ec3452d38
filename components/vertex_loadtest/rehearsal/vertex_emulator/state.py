"""The emulator's state and its clock: resources, long-running operations, injected faults."""

from __future__ import annotations

import datetime as _dt
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vertex_loadtest.rehearsal.vertex_emulator.status import STATUS_CODES, ApiError

Json = dict[str, Any]
TYPE_PREFIX = "type.googleapis.com/google.cloud.aiplatform.v1."
EMPTY_TYPE = "type.googleapis.com/google.protobuf.Empty"

#: Operation kinds (also the ``kind`` of requests in the log and of hooks) -> their metadata message.
OPERATION_METADATA = {
    "createEndpoint": "CreateEndpointOperationMetadata",
    "deployModel": "DeployModelOperationMetadata",
    "undeployModel": "UndeployModelOperationMetadata",
    "deleteEndpoint": "DeleteOperationMetadata",
    "uploadModel": "UploadModelOperationMetadata",
    "deleteModel": "DeleteOperationMetadata",
}
OPERATION_KINDS = tuple(OPERATION_METADATA)
_PROJECT = re.compile(r"^projects/([^/]+)(/.*)?$")


def rfc3339(timestamp: float | None = None) -> str:
    moment = _dt.datetime.fromtimestamp(time.time() if timestamp is None else timestamp, tz=_dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Operation:
    """A long-running operation; ``apply`` makes its effect when it finishes (unless it fails first)."""

    name: str
    kind: str
    resource: str
    created: float
    finish_at: float
    apply: Callable[[], Json | None]
    response_type: str
    done: bool = False
    error: Json | None = None
    response: Json | None = None
    updated: float = 0.0

    def to_json(self) -> Json:
        generic = {"createTime": rfc3339(self.created), "updateTime": rfc3339(self.updated or self.created)}
        metadata = {"@type": TYPE_PREFIX + OPERATION_METADATA[self.kind], "genericMetadata": generic}
        body: Json = {"name": self.name, "metadata": metadata, "done": self.done}
        if self.done and self.error is not None:
            body["error"] = self.error
        elif self.done:
            body["response"] = {"@type": self.response_type, **(self.response or {})}
        return body


@dataclass
class RequestFault:
    http_status: int
    remaining: int
    method: str | None
    path_regex: re.Pattern[str] | None
    kind: str | None


@dataclass
class OperationFault:
    kind: str
    remaining: int
    status: str
    message: str


@dataclass
class Resources:
    endpoints: dict[str, Json] = field(default_factory=dict)
    models: dict[str, Json] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)
    pipeline_jobs: dict[str, str] = field(default_factory=dict)
    model_servers: dict[str, str] = field(default_factory=dict)


class Backend:
    """State, clock and operation engine the HTTP handlers work on; hold ``lock`` while touching it.

    Args:
        operation_seconds: How long every long-running operation takes, in simulated seconds.
        operation_seconds_by_kind: Per-kind override, e.g. ``{"deployModel": 900.0}``.
        time_scale: Real seconds per simulated second (0.01: a 900 s deploy takes 9 s).
        project_number: When set, resource names carry it in place of the project id a caller passes.
        seed: Seeds the id generator and the traffic-split draw (reproducible runs).
    """

    def __init__(
        self,
        *,
        operation_seconds: float = 0.0,
        operation_seconds_by_kind: dict[str, float] | None = None,
        time_scale: float = 1.0,
        project_number: str = "",
        seed: int | None = None,
    ) -> None:
        if project_number and not project_number.isdigit():
            raise ValueError(f"project_number {project_number!r} must be digits")
        self.operation_seconds = operation_seconds
        self.operation_seconds_by_kind: dict[str, float] = dict(operation_seconds_by_kind or {})
        self.time_scale = time_scale
        self.project_number = project_number
        #: The most items one page of a listing holds (a larger ``pageSize`` gets this many).
        self.list_page_size = 50
        #: The harsh case: label terms of a list ``filter`` match nothing (set by ``misread_filters``).
        self.misread_filter = False
        #: How long ``:predict`` waits for a model server (Vertex: 60 s).
        self.predict_timeout = 60.0
        #: Deleting a model within this many simulated seconds after its undeploy is FAILED_PRECONDITION.
        self.model_delete_blocked_seconds = 0.0
        #: When set, ListOperations under an endpoint answers this HTTP code (``refuse_operations_listing``).
        self.operations_listing_refusal = 0
        #: ``""`` (cancel works), ``"unimplemented"`` or ``"not-cancellable"`` (``refuse_cancel``).
        self.cancel_refusal = ""
        #: Model name -> real time its last undeploy took effect.
        self.undeployed_at: dict[str, float] = {}
        self.random = random.Random(seed)
        self.lock = threading.RLock()
        self.state = Resources()
        self.request_faults: list[RequestFault] = []
        self.operation_faults: list[OperationFault] = []

    # ------------------------------------------------------------------------------------- names
    def new_id(self) -> str:
        return str(self.random.randint(10**18, 9 * 10**18))

    def canonical(self, name: str) -> str:
        """``name`` as the service writes it: with the project number when one is configured."""
        match = _PROJECT.match(name)
        if not self.project_number or match is None or match[1].isdigit():
            return name
        return f"projects/{self.project_number}{match[2] or ''}"

    def endpoint(self, name: str) -> Json:
        endpoint = self.state.endpoints.get(name)
        if endpoint is None:
            raise ApiError("NOT_FOUND", f'Endpoint "{name}" not found.')
        return endpoint

    def model(self, name: str) -> Json:
        model = self.state.models.get(name.split("@", 1)[0])
        if model is None:
            raise ApiError("NOT_FOUND", f'Model "{name}" not found.')
        return model

    # -------------------------------------------------------------------------------- operations
    def seconds_for(self, kind: str) -> float:
        """Real seconds an operation of ``kind`` takes."""
        return float(self.operation_seconds_by_kind.get(kind, self.operation_seconds)) * self.time_scale

    def start_operation(
        self, kind: str, resource: str, apply: Callable[[], Json | None], response_type: str
    ) -> Json:
        now = time.time()
        operation = Operation(
            name=f"{resource}/operations/{self.new_id()}",
            kind=kind,
            resource=resource,
            created=now,
            finish_at=now + self.seconds_for(kind),
            apply=apply,
            response_type=response_type,
        )
        self.state.operations[operation.name] = operation
        self.advance()
        return operation.to_json()

    def advance(self) -> None:
        """Finishes every operation whose time has come, in the order they were due."""
        now = time.time()
        due = sorted(
            (op for op in self.state.operations.values() if not op.done and op.finish_at <= now),
            key=lambda op: op.finish_at,
        )
        for operation in due:
            self._finish(operation)

    def _finish(self, operation: Operation) -> None:
        operation.done = True
        operation.updated = time.time()
        for fault in self.operation_faults:
            if fault.kind == operation.kind and fault.remaining > 0:
                fault.remaining -= 1
                operation.error = {"code": STATUS_CODES[fault.status][1], "message": fault.message}
                return
        try:
            operation.response = operation.apply() or {}
        except ApiError as error:
            operation.error = error.rpc_status()

    def operation(self, name: str) -> Operation:
        operation = self.state.operations.get(name)
        if operation is None:
            raise ApiError("NOT_FOUND", f"Operation {name} not found.")
        return operation

    def in_flight(self, resource: str, kinds: tuple[str, ...]) -> list[Operation]:
        return [
            op
            for op in self.state.operations.values()
            if op.resource == resource and not op.done and op.kind in kinds
        ]
