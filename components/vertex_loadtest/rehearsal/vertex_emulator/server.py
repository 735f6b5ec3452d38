"""The emulator server: lifecycle, fault injection, inspection, and the HTTP front end over the routes."""

from __future__ import annotations

import copy
import json
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from vertex_loadtest.rehearsal.vertex_emulator import admin, routes
from vertex_loadtest.rehearsal.vertex_emulator.call import Call, RawReply, Reply
from vertex_loadtest.rehearsal.vertex_emulator.operations import CANCEL_REFUSALS
from vertex_loadtest.rehearsal.vertex_emulator.state import (
    OPERATION_KINDS,
    Backend,
    Json,
    OperationFault,
    RequestFault,
)
from vertex_loadtest.rehearsal.vertex_emulator.status import ApiError, status_for_http

LOOPBACK = "127.0.0.1"
#: How often the serving thread checks for ``stop()`` (the standard library's 0.5 s made every stop slow).
_SHUTDOWN_POLL_S = 0.05
Hook = Callable[["VertexEmulator", dict[str, Any]], None]
_INJECTED_MESSAGES = {
    "RESOURCE_EXHAUSTED": "Quota exceeded (injected 429). Please retry.",
    "UNAVAILABLE": "The service is currently unavailable (injected 503).",
}


class VertexEmulator(Backend):
    """The emulator server; start with ``with VertexEmulator() as emulator`` or :meth:`start`.

    Args:
        port: TCP port on 127.0.0.1 (0 picks a free one).
        operation_seconds: How long every long-running operation takes, in simulated seconds (0 = done
            when created).
        operation_seconds_by_kind: Per-kind override, e.g. ``{"deployModel": 900.0}``.
        predict_timeout: Seconds the emulator waits for a model server (Vertex: 60).
        time_scale: Real seconds per simulated second (0.01: a 900 s deploy takes 9 s).
        project_number: When set, names carry this project number; callers may still use the id.
        seed: Seeds the id generator and the traffic-split draw (reproducible runs).
    """

    def __init__(
        self,
        port: int = 0,
        *,
        operation_seconds: float = 0.0,
        operation_seconds_by_kind: dict[str, float] | None = None,
        predict_timeout: float = 60.0,
        time_scale: float = 1.0,
        project_number: str = "",
        seed: int | None = None,
    ) -> None:
        super().__init__(
            operation_seconds=operation_seconds,
            operation_seconds_by_kind=operation_seconds_by_kind,
            time_scale=time_scale,
            project_number=project_number,
            seed=seed,
        )
        self.predict_timeout = predict_timeout
        self._requested_port = port
        self._hooks: list[tuple[str, Hook]] = []
        #: ``(method, path, kind, http_status)`` of every API request but predictions.
        self.requests: list[tuple[str, str, str, int]] = []
        #: HTTP status -> count of ``:predict``/``:rawPredict`` answers (kept out of ``requests``, which
        #: a long load test would grow without bound).
        self.predict_statuses: dict[int, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

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

    @property
    def url(self) -> str:
        return self.api_endpoint

    def start(self) -> VertexEmulator:
        if self._server is not None:
            return self
        handler = type("Handler", (_Handler,), {"emulator": self})
        server = _QuietServer((LOOPBACK, self._requested_port), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(_SHUTDOWN_POLL_S,), name="vertex-emulator", daemon=True
        )
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
        fault = RequestFault(
            http_status,
            count,
            method.upper() if method else None,
            re.compile(path_regex) if path_regex else None,
            kind,
        )
        with self.lock:
            self.request_faults.append(fault)

    def fail_operations(
        self, kind: str, count: int = 1, *, status: str = "INTERNAL", message: str = "Injected failure."
    ) -> None:
        """The next ``count`` operations of ``kind`` finish with ``error`` (and without their effect)."""
        if kind not in OPERATION_KINDS:
            raise ValueError(f"unknown operation kind {kind!r}; known: {', '.join(OPERATION_KINDS)}")
        with self.lock:
            self.operation_faults.append(OperationFault(kind, count, status, message))

    def set_operation_seconds(self, seconds: float, kind: str | None = None) -> None:
        """How long operations (of ``kind``, or all) take from now on, in simulated seconds."""
        with self.lock:
            if kind is None:
                self.operation_seconds = seconds
                self.operation_seconds_by_kind.clear()
            else:
                self.operation_seconds_by_kind[kind] = seconds

    def refuse_operations_listing(self, http_code: int) -> None:
        """ListOperations under an endpoint answers ``http_code`` (404, 403, 501, 503, ...) from now on."""
        status_for_http(http_code)
        with self.lock:
            self.operations_listing_refusal = http_code

    def refuse_cancel(self, mode: str) -> None:
        """Cancelling an operation answers 501 UNIMPLEMENTED (``"unimplemented"``) or 400
        FAILED_PRECONDITION "operation is not cancellable" (``"not-cancellable"``); ``""`` allows it again."""
        if mode not in CANCEL_REFUSALS:
            raise ValueError(
                f"refuse_cancel mode {mode!r}: use one of {', '.join(map(repr, CANCEL_REFUSALS))}"
            )
        with self.lock:
            self.cancel_refusal = mode

    def misread_filters(self) -> None:
        """The harsh case: a list ``filter`` in any form not documented for endpoints.list (a dashed or
        quoted label key, ``!=`` on a label, ``AND``) matches nothing, without an error."""
        with self.lock:
            self.misread_filter = True

    def delete_externally(self, name: str) -> None:
        """Someone else deletes endpoint or model ``name`` (models undeployed with it), immediately."""
        with self.lock:
            self.state.endpoints.pop(self.canonical(name), None)
            self.state.models.pop(self.canonical(name), None)

    def on_request(self, kind: str, hook: Hook) -> None:
        """After each request of ``kind``: ``hook(emulator, {method, path, kind, status, body})``."""
        with self.lock:
            self._hooks.append((kind, hook))

    def set_pipeline_job_state(self, job_name: str, state: str) -> None:
        """Makes ``GET .../pipelineJobs/{job_name}`` answer ``state`` (e.g. ``PIPELINE_STATE_RUNNING``)."""
        with self.lock:
            self.state.pipeline_jobs[job_name.rsplit("/", 1)[-1]] = state

    def register_model_server(self, model: str, url: str) -> None:
        """Routes ``:predict`` for deployed ``model`` (resource name) to ``url``."""
        with self.lock:
            self.state.model_servers[self.canonical(model)] = url

    # ------------------------------------------------------------------------------------ inspection
    def endpoints(self) -> dict[str, Json]:
        """A snapshot of every endpoint (after finishing due operations), keyed by resource name."""
        with self.lock:
            self.advance()
            return copy.deepcopy(self.state.endpoints)

    def models(self) -> dict[str, Json]:
        with self.lock:
            self.advance()
            return copy.deepcopy(self.state.models)

    def operations(self) -> list[Json]:
        with self.lock:
            self.advance()
            return [op.to_json() for op in self.state.operations.values()]

    # -------------------------------------------------------------------------------------- serving
    def handle(self, method: str, raw_path: str, body: bytes) -> tuple[int, Reply]:
        """Answers one request: (HTTP status, JSON body or raw bytes)."""
        parsed = urllib.parse.urlsplit(raw_path)
        path = urllib.parse.unquote(parsed.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        if path.startswith("/_emulator/"):
            return admin.handle(self, method, path, body)
        route, resource, path_served = routes.find(method, path)
        kind = route.kind if route else "unrouted"
        path = "/v1/" + path[len("/ui/") :] if path.startswith("/ui/") else path  # logged as /v1/
        try:
            with self.lock:
                self.advance()
                self._raise_injected(method, path, kind)
            if route is None:
                if path_served:
                    raise ApiError("UNIMPLEMENTED", f"Method {method} is not implemented for {path}.")
                raise ApiError("NOT_FOUND", f"The emulator does not serve {method} {path}.")
            declared = {key: value for key, value in query.items() if key in route.params}
            call = Call(self.canonical(resource), declared, body, route.params)
            if route.locked:
                with self.lock:
                    payload = route.handler(self, call)
            else:
                payload = route.handler(self, call)
            status = 200
        except ApiError as error:
            status, payload = error.http_status, error.body()
        except (KeyError, TypeError, ValueError, AttributeError) as error:  # a body of unexpected shape
            status, payload = 400, ApiError("INVALID_ARGUMENT", f"Invalid request: {error!r}").body()
        self._after(method, path, kind, status, body)
        return status, payload

    def _after(self, method: str, path: str, kind: str, status: int, body: bytes) -> None:
        with self.lock:
            if kind in ("predict", "rawPredict"):
                self.predict_statuses[status] = self.predict_statuses.get(status, 0) + 1
            else:
                self.requests.append((method, path, kind, status))
            hooks = [hook for hook_kind, hook in self._hooks if hook_kind == kind]
        info = {"method": method, "path": path, "kind": kind, "status": status, "body": body}
        for hook in hooks:
            hook(self, info)

    def _raise_injected(self, method: str, path: str, kind: str) -> None:
        for fault in self.request_faults:
            if fault.remaining <= 0 or (fault.method and fault.method != method):
                continue
            if (fault.path_regex and not fault.path_regex.search(path)) or (
                fault.kind and fault.kind != kind
            ):
                continue
            fault.remaining -= 1
            status = status_for_http(fault.http_status)
            message = _INJECTED_MESSAGES.get(status, f"Injected {fault.http_status} {status}.")
            raise ApiError(status, message, http_status=fault.http_status)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-request (a killed process) is not the emulator's error."""
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
        headers: dict[str, str] = {}
        if isinstance(payload, RawReply):
            data, headers = payload.data, dict(payload.headers)
            headers["Content-Type"] = "application/octet-stream"
        else:
            data = json.dumps(payload).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=UTF-8"
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors of the HTTP layer (a malformed request line, an unknown verb) as a google.rpc.Status too."""
        data = json.dumps(ApiError(status_for_http(code), message or explain or "", http_status=code).body())
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(data.encode("utf-8"))

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read emulator.requests
        pass
