"""Long-running operations: get, cancel, wait, delete, and the listing under one resource.

Cancelling a running operation finishes it with ``error.code`` 1 (CANCELLED) and without its effect.
"""

from __future__ import annotations

import time

from vertex_loadtest.rehearsal.vertex_emulator.call import Call
from vertex_loadtest.rehearsal.vertex_emulator.filters import paginate
from vertex_loadtest.rehearsal.vertex_emulator.state import Backend, Json
from vertex_loadtest.rehearsal.vertex_emulator.status import ApiError, status_for_http

#: The longest a ``:wait`` holds the connection (the service also answers before the operation ends).
MAX_WAIT_SECONDS = 10.0


def get(backend: Backend, call: Call) -> Json:
    return backend.operation(call.name).to_json()


#: ``refuse_cancel`` modes -> the error a cancel answers.
CANCEL_REFUSALS = {
    "": None,
    "unimplemented": ("UNIMPLEMENTED", "Operation cancellation is not implemented for this operation."),
    "not-cancellable": ("FAILED_PRECONDITION", "operation is not cancellable"),
}


def cancel(backend: Backend, call: Call) -> Json:
    operation = backend.operation(call.name)
    refusal = CANCEL_REFUSALS[backend.cancel_refusal]
    if refusal is not None:
        raise ApiError(*refusal)
    if not operation.done:
        operation.done = True
        operation.updated = time.time()
        operation.error = {"code": 1, "message": "Operation was cancelled."}
    return {}


def _seconds(duration: str) -> float:
    """A google.protobuf.Duration in JSON (``"1.5s"``)."""
    try:
        return float(duration.removesuffix("s"))
    except ValueError:
        raise ApiError("INVALID_ARGUMENT", f"timeout {duration!r} is not a duration like '10s'.") from None


def wait(backend: Backend, call: Call) -> Json:
    """Answers when the operation is done or ``timeout`` (a query parameter) passed, whichever is first."""
    operation = backend.operation(call.name)
    timeout = _seconds(call.param("timeout")) if call.param("timeout") else MAX_WAIT_SECONDS
    deadline = time.time() + min(timeout, MAX_WAIT_SECONDS)
    while not operation.done and time.time() < deadline:
        backend.lock.release()
        try:
            time.sleep(min(0.02, max(0.0, operation.finish_at - time.time())))
        finally:
            backend.lock.acquire()
        backend.advance()
    return operation.to_json()


def delete(backend: Backend, call: Call) -> Json:
    backend.operation(call.name)
    del backend.state.operations[call.name]
    return {}


def list_(backend: Backend, call: Call) -> Json:
    """The operations of exactly the resource ``call.name`` (not of ``endpoints/12`` for ``endpoints/1``).

    ``refuse_operations_listing`` makes it answer an error under endpoints, as front ends may.
    """
    if backend.operations_listing_refusal and "/endpoints/" in call.name:
        code = backend.operations_listing_refusal
        raise ApiError(
            status_for_http(code), f"Listing operations is not available ({code}).", http_status=code
        )
    operations = [op.to_json() for op in backend.state.operations.values() if op.resource == call.name]
    wanted = call.param("filter").replace(" ", "")
    if wanted in ("done=false", "done=true"):
        operations = [op for op in operations if op["done"] == (wanted == "done=true")]
    page, token = paginate(
        operations, call.param("pageSize"), call.param("pageToken"), backend.list_page_size
    )
    return {"operations": page, **({"nextPageToken": token} if token else {})}
