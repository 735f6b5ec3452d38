"""The emulator's admin API over HTTP (outside ``/v1/``) and the ``vertex-loadtest emulator`` command.

See docs/rehearsal.md for the admin routes.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from vertex_loadtest.rehearsal.vertex_emulator.state import OPERATION_KINDS
from vertex_loadtest.rehearsal.vertex_emulator.status import ApiError
from vertex_loadtest.rehearsal.vertex_emulator.validation import json_body

if TYPE_CHECKING:
    from vertex_loadtest.rehearsal.vertex_emulator.server import VertexEmulator


def _faults(emulator: VertexEmulator, data: dict[str, Any]) -> None:
    for spec in data.get("requests", []):
        emulator.fail_requests(
            int(spec.get("httpStatus", 503)),
            int(spec.get("count", 1)),
            method=spec.get("method"),
            path_regex=spec.get("pathRegex"),
            kind=spec.get("kind"),
        )
    for spec in data.get("operations", []):
        emulator.fail_operations(
            spec["kind"],
            int(spec.get("count", 1)),
            status=spec.get("status", "INTERNAL"),
            message=spec.get("message", "Injected failure."),
        )
    for kind, seconds in data.get("operationSeconds", {}).items():
        emulator.set_operation_seconds(float(seconds), None if kind == "*" else kind)
    for name in data.get("deleteExternally", []):
        emulator.delete_externally(name)
    _harsher(emulator, data)


def _harsher(emulator: VertexEmulator, data: dict[str, Any]) -> None:
    """The knobs for the real service's harsher behaviour (the names of the Python API, camelCased)."""
    if "refuseOperationsListing" in data:
        emulator.refuse_operations_listing(int(data["refuseOperationsListing"]))
    if "refuseCancel" in data:
        emulator.refuse_cancel(str(data["refuseCancel"]))
    if data.get("misreadFilters"):
        emulator.misread_filters()
    with emulator.lock:
        if "listPageSize" in data:
            emulator.list_page_size = int(data["listPageSize"])
        if "modelDeleteBlockedSeconds" in data:
            emulator.model_delete_blocked_seconds = float(data["modelDeleteBlockedSeconds"])
        if "timeScale" in data:
            emulator.time_scale = float(data["timeScale"])


def handle(emulator: VertexEmulator, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Answers one admin request."""
    try:
        data = json_body(body)
        if method == "GET" and path == "/_emulator/state":
            return 200, {
                "endpoints": emulator.endpoints(),
                "models": emulator.models(),
                "operations": emulator.operations(),
            }
        if method == "POST" and path == "/_emulator/faults":
            _faults(emulator, data)
            return 200, {}
        if method == "POST" and path == "/_emulator/model-servers":
            emulator.register_model_server(data["model"], data["url"])
            return 200, {}
        if method == "POST" and path == "/_emulator/pipeline-jobs":
            emulator.set_pipeline_job_state(data["name"], data["state"])
            return 200, {}
    except ApiError as error:
        return error.http_status, error.body()
    except (KeyError, ValueError) as error:
        return 400, ApiError("INVALID_ARGUMENT", f"bad admin request: {error}").body()
    return 404, ApiError("NOT_FOUND", f"no admin route {method} {path}").body()


def serve(args: argparse.Namespace) -> int:
    """``vertex-loadtest emulator --port N``: serves on 127.0.0.1 until interrupted."""
    from vertex_loadtest.errors import BadInput
    from vertex_loadtest.rehearsal.vertex_emulator.server import VertexEmulator

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
