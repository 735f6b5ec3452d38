"""``VertexEndpointUser``: the built-in Locust user for a Vertex AI ``:predict`` endpoint.

Importing this module imports locust (fine inside a locustfile, never in a pipeline author's process).
It is the documented base class for a team's own locustfile::

    from vertex_loadtest.locust_load_test.vertex_user import VertexEndpointUser
    from locust import task

    class ChatUser(VertexEndpointUser):
        @task
        def long_prompt(self):
            self.predict([{"prompt": "Write a sonnet about load tests."}], name=":predict long")

Each task POSTs ``{"instances": [...]}`` (or a whole request body from the payloads) to the endpoint's
``:predict`` path. The bearer token comes from Google application-default credentials, shared by
every user of a process and refreshed before it expires, so hour-long tests do not turn into 401s.
Non-2xx answers and bodies without a ``predictions`` list are failures. With an anonymous target
(loopback, or ``auth: none`` in the run configuration) no token is sent.
"""

import datetime
import itertools
import json
import os
import random
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

from locust import FastHttpUser

from vertex_loadtest.errors import MalformedResponse
from vertex_loadtest.locust_load_test.run_config import RunConfig

_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
_DEFAULT_INSTANCES: list[Any] = [{"text": "Write a dialog using Shakespeare language."}]
_CONFIG = RunConfig.from_environment()
_JSON = {"Content-Type": "application/json"}


class _TokenSource:
    """Application-default credentials, refreshed ahead of expiry, shared by a process's users."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._credentials: Any = None
        self._refreshed_at: datetime.datetime | None = None

    def token(self) -> str:
        with self._lock:
            if self._credentials is None:
                import google.auth

                self._credentials, _ = google.auth.default(scopes=_SCOPES)
            if self._needs_refresh():
                import google.auth.transport.requests

                self._credentials.refresh(google.auth.transport.requests.Request())
                self._refreshed_at = _utcnow()
            return str(self._credentials.token)

    def _needs_refresh(self) -> bool:
        expiry = self._credentials.expiry
        if not self._credentials.token or self._refreshed_at is None:
            return True
        if expiry is None:
            return False
        # Refresh a quarter of the token's lifetime (at most 5 minutes) before it expires.
        margin = min(datetime.timedelta(minutes=5), (expiry - self._refreshed_at) / 4)
        return bool(_utcnow() >= expiry - margin)


def _utcnow() -> datetime.datetime:
    # google-auth keeps expiry as a naive UTC datetime.
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _request_bodies(payloads: list[Any]) -> list[str]:
    """Serializes payload records once: a record with "instances" is a body, anything else one instance."""
    return [
        json.dumps(record if isinstance(record, dict) and "instances" in record else {"instances": [record]})
        for record in payloads
    ]


class VertexEndpointUser(FastHttpUser):
    """POSTs prediction requests to a Vertex AI endpoint's ``:predict`` path.

    Class attributes a subclass may set (the load-test runtime fills them from its configuration):
    ``predict_path``, ``payloads`` (request bodies or instances), ``anonymous``, ``network_timeout``.
    """

    abstract = True
    predict_path: ClassVar[str] = _CONFIG.predict_path or os.environ.get(
        "VERTEX_AI_ENDPOINT_PATH", "/predict"
    )
    payloads: ClassVar[list[Any]] = _CONFIG.payloads or _DEFAULT_INSTANCES
    anonymous: ClassVar[bool] = _CONFIG.anonymous
    network_timeout = _CONFIG.request_timeout_s
    connection_timeout = network_timeout
    _tokens: ClassVar[_TokenSource] = _TokenSource()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        bodies = _request_bodies(self.payloads)
        start = random.randrange(len(bodies))
        self._bodies: Iterator[str] = itertools.islice(itertools.cycle(bodies), start, None)

    def predict_next(self) -> None:
        """Sends the next request body of the payloads, round robin from a random start (the built-in
        user's task; not a task here, so subclasses run only their own)."""
        self.request_prediction(next(self._bodies))

    def predict(self, instances: list[Any], name: str = ":predict", **parameters: Any) -> Any:
        """Sends ``{"instances": instances, **parameters}``; returns the predictions, or None on failure."""
        return self.request_prediction(json.dumps({"instances": instances, **parameters}), name=name)

    def request_prediction(self, body: str, name: str = ":predict") -> Any:
        """POSTs one serialized request body; marks non-2xx and malformed answers as failures."""
        headers = _JSON if self.anonymous else {**_JSON, "Authorization": f"Bearer {self._tokens.token()}"}
        with self.client.post(
            self.predict_path, data=body, headers=headers, name=name, catch_response=True
        ) as response:
            status = response.status_code
            if not 200 <= status < 300:
                response.failure(
                    f"HTTP {status}: {(response.text or '')[:200]}" if status else response.error
                )
                return None
            try:
                predictions = json.loads(response.content or b"")["predictions"]
                if not isinstance(predictions, list):
                    raise TypeError("predictions is not a list")
            except (ValueError, KeyError, TypeError) as error:
                response.failure(
                    MalformedResponse(f"HTTP {status} body is not a prediction response: {error}")
                )
                return None
            response.success()
            return predictions
