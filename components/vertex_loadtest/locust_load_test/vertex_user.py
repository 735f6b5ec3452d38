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

``VertexChatUser`` is its generative sibling: ``chat(messages, name=..., **parameters)`` streams an
OpenAI-compatible chat completion (``--api chat`` or ``stream-raw``) and returns the generated text;
TTFT, ITL, TPOT and tokens go to the run's statistics (``docs/llm-metrics.md``)::

    class Support(VertexChatUser):
        @task
        def ask(self):
            self.chat([{"role": "user", "content": "Where is my parcel?"}], name="support", max_tokens=64)
"""

import datetime
import itertools
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

from locust import FastHttpUser

from vertex_loadtest.errors import MalformedResponse, StreamFailure
from vertex_loadtest.locust_load_test.run_config import RunConfig
from vertex_loadtest.locust_load_test.streaming import Generation, StreamReader
from vertex_loadtest.stats import ErrorKind

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


class VertexChatUser(FastHttpUser):
    """Streams OpenAI-compatible chat completions from a generative endpoint and times every token.

    Each request asks for ``stream: true`` and ``stream_options.include_usage`` and is read as the
    bytes arrive (each read stamped on arrival). Locust's response time is the E2E latency (to the
    last content event); the per-request TTFT, ITL, TPOT and token counts travel in the request
    event's ``context["generation"]`` to our plugin. Class attributes a subclass may set:
    ``chat_path``, ``prompts`` (request bodies with ``messages``), ``max_tokens``, ``anonymous``,
    ``network_timeout``.
    """

    abstract = True
    chat_path: ClassVar[str] = _CONFIG.predict_path or "/v1/chat/completions"
    prompts: ClassVar[list[dict[str, Any]]] = _CONFIG.prompts or [
        {"messages": [{"role": "user", "content": "Write a dialog using Shakespeare language."}]}
    ]
    max_tokens: ClassVar[int] = _CONFIG.max_tokens
    anonymous: ClassVar[bool] = _CONFIG.anonymous
    network_timeout = _CONFIG.request_timeout_s
    connection_timeout = network_timeout
    _tokens: ClassVar[_TokenSource] = VertexEndpointUser._tokens

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        start = random.randrange(len(self.prompts))
        self._prompts: Iterator[dict[str, Any]] = itertools.islice(itertools.cycle(self.prompts), start, None)

    def chat_next(self) -> str | None:
        """Sends the next prompt of the run, round robin from a random start (the built-in task)."""
        prompt = next(self._prompts)
        return self.chat(prompt["messages"], **{k: v for k, v in prompt.items() if k != "messages"})

    def chat(self, messages: list[dict[str, Any]], name: str = "chat", **parameters: Any) -> str | None:
        """Streams one chat completion; returns the generated text, or None on failure.

        Args:
            messages: OpenAI-style messages, e.g. ``[{"role": "user", "content": "Hi"}]``.
            name: The request name in the statistics (reported as ``POST {name}``).
            **parameters: More body fields (``max_tokens``, ``temperature``, ``model``, ...).
        """
        if self.max_tokens:  # the run's cap: sets max_tokens, or lowers a larger one
            parameters["max_tokens"] = min(parameters.get("max_tokens") or self.max_tokens, self.max_tokens)
        body = {
            "messages": messages,
            **parameters,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        headers = _JSON if self.anonymous else {**_JSON, "Authorization": f"Bearer {self._tokens.token()}"}
        started = time.perf_counter()
        with self.client.post(
            self.chat_path,
            data=json.dumps(body),
            headers=headers,
            name=name,
            catch_response=True,
            stream=True,
        ) as response:
            status = response.status_code
            if not 200 <= status < 300:
                text = (response.text or "")[:200] if status else ""
                response.failure(f"HTTP {status}: {text}" if status else response.error)
                return None
            reader = StreamReader(started)
            try:
                generation = _read_stream(response.stream, reader)
            except StreamFailure as failure:
                response.request_meta["response_time"] = (time.perf_counter() - started) * 1000
                response.failure(failure)
                return None
            response.request_meta["response_time"] = generation.e2e_ms
            response.request_meta["context"] = {**response.request_meta["context"], "generation": generation}
            response.success()
            return generation.text


def _read_stream(stream: Any, reader: StreamReader) -> Generation:
    """Feeds ``reader`` each network read of a streamed HTTP body, stamped when ``recv`` returns.

    geventhttpclient's own ``read(n)`` waits for ``n`` bytes; a stream needs each read as it comes, so
    this receives on the response's socket and lets its HTTP parser de-chunk the body. Body bytes that
    came in the same read as the headers are stamped on entry, microseconds after they arrived.
    """
    body = stream._body_buffer  # bytes that arrived with the headers
    if body:
        reader.feed(bytes(body), time.perf_counter())
        del body[:]
    sock = stream._sock
    try:
        while not stream.message_complete and sock is not None:
            data = sock.recv(stream.block_size)
            at = time.perf_counter()
            if not data:
                break
            stream.feed(data)
            if body:
                reader.feed(bytes(body), at)
                del body[:]
    except StreamFailure:  # an error object or a malformed event: the rest is not worth reading
        _discard(stream)
        raise
    except OSError as error:
        _discard(stream)
        timed_out = isinstance(error, TimeoutError) or "timed out" in str(error)
        kind = ErrorKind.TIMEOUT if timed_out else ErrorKind.CONNECTION
        raise StreamFailure(kind, f"stream read failed: {error}") from None
    if not stream.message_complete:
        _discard(stream)
    return reader.finish(time.perf_counter())


def _discard(stream: Any) -> None:
    """Closes the connection of an unfinished stream instead of returning it to the pool."""
    sock, pool = stream._sock, getattr(stream, "_pool", None)
    stream._sock = stream._pool = None
    if sock is not None:
        if pool is not None:
            pool.release_socket(sock)
        else:
            sock.close()
