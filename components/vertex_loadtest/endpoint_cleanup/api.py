"""The cleanup's calls to Vertex AI: retried, bounded by one overall deadline, operations polled to the end.

Calls are retried on 429 / 503 / 504 / connection errors with exponential backoff (api-core
``Retry``), each bounded by what is left of the deadline. Reading values the API returns (times,
enum names, error statuses) also lives here.
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import requests
from google.api_core import exceptions, retry

from vertex_loadtest.errors import DeadlineReached, OperationFailed
from vertex_loadtest.vertex_clients import VertexClients

T = TypeVar("T")

#: Errors worth another try of the same call.
TRANSIENT: tuple[type[Exception], ...] = (
    exceptions.TooManyRequests,
    exceptions.ServiceUnavailable,
    exceptions.DeadlineExceeded,
    exceptions.GatewayTimeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
)
_REQUEST_PREFIX = re.compile(r"^(?:GET|POST|PATCH|PUT|DELETE) \S+: ")
#: Retry budget of a call the cleanup can do without (listing operations).
OPTIONAL_CALL_SECONDS = 60.0
#: google.rpc codes.
CANCELLED = 1
FAILED_PRECONDITION = 9


class VertexApi:
    """The service clients of one cleanup, its deadline, and the retrying call and wait around them."""

    def __init__(
        self,
        clients: VertexClients,
        deadline_seconds: float,
        poll_initial_seconds: float = 0.2,
        poll_max_seconds: float = 10.0,
    ) -> None:
        self.endpoints = clients.endpoints
        self.models = clients.models
        self.pipelines = clients.pipelines
        self.deadline = time.monotonic() + deadline_seconds
        _REQUEST_PREFIX = re.compile(r"^(?:GET|POST|PATCH|PUT|DELETE) \S+: ")
        #: Retry budget of a call the cleanup can do without: a minute, or a tenth of a short deadline.
        self.optional_call_seconds = min(OPTIONAL_CALL_SECONDS, deadline_seconds / 10)
        self.poll_initial_seconds = poll_initial_seconds
        self.poll_max_seconds = poll_max_seconds

    def remaining_seconds(self) -> float:
        return self.deadline - time.monotonic()

    def call(self, method: Callable[..., T], *, budget: float | None = None, **kwargs: Any) -> T:
        """One API call with retries on transient errors, bounded by the deadline (and ``budget``).

        Raises:
            DeadlineReached: the deadline (or the budget) passed while retrying.
            google.api_core.exceptions.GoogleAPICallError: any other error, as the client raised it.
        """
        remaining = self.remaining_seconds()
        if remaining <= 0:
            raise DeadlineReached("the cleanup deadline passed")
        limit = remaining if budget is None else min(budget, remaining)
        policy = retry.Retry(
            predicate=retry.if_exception_type(*TRANSIENT),
            initial=0.2,
            maximum=5.0,
            multiplier=2.0,
            timeout=limit,
        )
        try:
            return method(retry=policy, timeout=min(60.0, max(1.0, limit)), **kwargs)
        except exceptions.RetryError as error:
            raise DeadlineReached(f"retries exhausted at the deadline: {error.cause or error}") from error

    def sleep(self, seconds: float, what: str) -> None:
        """Sleeps ``seconds`` unless the deadline comes first (then raises :class:`DeadlineReached`)."""
        if self.remaining_seconds() <= seconds:
            raise DeadlineReached(f"the cleanup deadline passed while {what}")
        time.sleep(seconds)

    def wait(self, get_operation: Callable[..., Any], operation_name: str) -> float:
        """Polls an operation until done; returns the seconds waited.

        Raises:
            OperationFailed: it ended with ``error`` set.
            DeadlineReached: it still runs at the deadline.
        """
        started = time.monotonic()
        delay = self.poll_initial_seconds
        while True:
            operation = self.call(get_operation, request={"name": operation_name})
            if operation.done:
                if operation.HasField("error") and operation.error.code:
                    raise OperationFailed(operation_name, operation.error.code, operation.error.message)
                return time.monotonic() - started
            self.sleep(delay, f"operation {operation_name} was still running")
            delay = min(delay * 1.5, self.poll_max_seconds)

    def list_all(self, list_method: Callable[..., Iterable[T]], **request: str) -> list[T]:
        """Every item of a paged listing, each page's call retried and bounded like :meth:`call`."""

        def every_page(**kwargs: Any) -> list[T]:
            return list(list_method(**kwargs))

        return self.call(every_page, request=request)

    def endpoint_operations(self, endpoint_name: str) -> list[Any]:
        """Every operation of an endpoint, all pages read (``ListOperations`` is paged).

        An optional call: its retries get :attr:`optional_call_seconds`, and any error is the caller's
        to interpret (it never means the endpoint is gone).
        """
        operations: list[Any] = []
        token = ""
        while True:
            request = {"name": endpoint_name, "page_token": token}
            page = self.call(
                self.endpoints.list_operations, budget=self.optional_call_seconds, request=request
            )
            operations += page.operations
            token = page.next_page_token
            if not token:
                return operations


def status_of(error: BaseException) -> str:
    """The google.rpc status name of an API error (REST carries it in the JSON body).

    For retries that ran out, the status of the last error, ``after retries``.
    """
    last = getattr(error.__cause__, "cause", None)
    if isinstance(error, DeadlineReached) and isinstance(last, BaseException):
        return f"{status_of(last)} after retries"
    response = getattr(error, "response", None)
    if response is not None:
        try:
            status = response.json().get("error", {}).get("status")
            if status:
                return str(status)
        except (ValueError, AttributeError):
            pass
    code = getattr(error, "grpc_status_code", None)
    return getattr(code, "name", "") or type(error).__name__


def is_failed_precondition(error: BaseException) -> bool:
    """FAILED_PRECONDITION, at the call (gRPC: FailedPrecondition; REST: a 400) or inside an operation."""
    if isinstance(error, OperationFailed):
        return error.code == FAILED_PRECONDITION
    return isinstance(error, exceptions.GoogleAPICallError) and status_of(error) == "FAILED_PRECONDITION"


def describe_error(error: BaseException) -> str:
    """``STATUS: message`` of an API error (without the ``POST https://...:`` the REST transport adds)."""
    if not isinstance(error, exceptions.GoogleAPICallError):
        return str(error)
    return f"{status_of(error)}: {_REQUEST_PREFIX.sub('', str(error.message))}"


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(tz=_dt.UTC)


def timestamp(value: Any) -> _dt.datetime | None:
    """A proto-plus DatetimeWithNanoseconds as an aware datetime (None when unset)."""
    if value is None:
        return None
    try:
        if not value.timestamp():
            return None
    except (AttributeError, OSError, ValueError):
        return None
    moment: _dt.datetime = value
    return moment if moment.tzinfo else moment.replace(tzinfo=_dt.UTC)


def enum_name(value: Any) -> str:
    """The name of a proto enum value; "" for ``..._UNSPECIFIED``."""
    name = str(getattr(value, "name", value))
    return "" if name.endswith("UNSPECIFIED") else name
