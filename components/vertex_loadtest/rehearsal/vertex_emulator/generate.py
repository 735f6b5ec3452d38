"""Generation through an endpoint, streamed through as the model server writes it.

- ``POST /v1beta1/{endpoint}/chat/completions`` (and the same path under ``/v1/``): OpenAI chat
  completions, as Model Garden's vLLM and TGI deployments serve them; forwarded to the model server's
  ``/v1/chat/completions``.
- ``POST /v1/{endpoint}:streamRawPredict``: the body passed unchanged to the model server's
  ``predictRoute`` (the vLLM container takes OpenAI bodies there), its answer streamed back.

Each piece the model server sends is written to the client when it arrives (one HTTP chunk, no
buffering), so a load test measures the model server's timing plus one loopback hop. An error status
from the model server before the stream starts is the API's error; a stream the model server breaks
is broken for the client too (the connection closes without the final chunk).
"""

from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Generator

from vertex_loadtest.rehearsal.vertex_emulator.call import Call, Reply, StreamReply
from vertex_loadtest.rehearsal.vertex_emulator.predict import check_size, model_server
from vertex_loadtest.rehearsal.vertex_emulator.state import Backend
from vertex_loadtest.rehearsal.vertex_emulator.status import ApiError, status_for_http

CHAT_SUFFIX = "/chat/completions"
OPENAI_CHAT_ROUTE = "/v1/chat/completions"


def chat_completions(backend: Backend, call: Call) -> Reply:
    """The model server's OpenAI chat completion, streamed or not, passed through."""
    check_size(call.body)
    deployed, _, url = model_server(backend, call.name.removesuffix(CHAT_SUFFIX))
    return _stream(url.rstrip("/") + OPENAI_CHAT_ROUTE, call.body, backend.predict_timeout, deployed)


def stream_raw_predict(backend: Backend, call: Call) -> Reply:
    """The model server's answer on its ``predictRoute``, passed through as it streams."""
    check_size(call.body)
    deployed, model, url = model_server(backend, call.name)
    route = (model.get("containerSpec") or {}).get("predictRoute", "")
    return _stream(url.rstrip("/") + route, call.body, backend.predict_timeout, deployed)


def _stream(url: str, body: bytes, timeout: float, deployed: dict[str, object]) -> StreamReply:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        connection.request("POST", parts.path or "/", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
    except TimeoutError as error:
        connection.close()
        raise ApiError("DEADLINE_EXCEEDED", f"The model server did not answer within {timeout}s.") from error
    except (ConnectionError, http.client.HTTPException, OSError) as error:
        connection.close()
        raise ApiError("UNAVAILABLE", f"The model server at {url} is unreachable: {error}") from error
    if response.status >= 400:
        detail = response.read().decode("utf-8", "replace")[:2000]
        connection.close()
        raise ApiError(
            status_for_http(response.status), f"The model server answered {response.status}: {detail}"
        )
    headers = {
        "Content-Type": response.getheader("Content-Type") or "application/json",
        "X-Vertex-AI-Deployed-Model-Id": str(deployed["id"]),
    }
    return StreamReply(_pieces(connection, response), headers)


def _pieces(
    connection: http.client.HTTPConnection, response: http.client.HTTPResponse
) -> Generator[bytes, None, None]:
    """Each read of the model server's body as it arrives; closes the connection at the end."""
    try:
        while piece := response.read1(65536):
            yield piece
    finally:
        connection.close()
