"""Generation through the Vertex AI emulator: chat completions (v1beta1) and ``:streamRawPredict``
reach the deployed generative model server and stream through as it writes, errors keep their status."""

import http.client
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from vertex_loadtest.rehearsal.llm_engine import Costs
from vertex_loadtest.rehearsal.llm_server import GenerativeServer
from vertex_loadtest.rehearsal.vertex_calls import deploy_local_model
from vertex_loadtest.rehearsal.vertex_emulator import VertexEmulator

CHAT = {"messages": [{"role": "user", "content": "How does the event loop run?"}], "ignore_eos": True}


@pytest.fixture
def deployed(vertex_emulator: VertexEmulator) -> Iterator[tuple[VertexEmulator, str, list[dict[str, Any]]]]:
    truth: list[dict[str, Any]] = []
    with GenerativeServer(Costs(decode_base_ms=5.0), truth=truth.append) as server:
        names = deploy_local_model(
            vertex_emulator.api_endpoint, project="p", location="us-central1", model_url=server.url
        )
        yield vertex_emulator, names["endpoint"], truth


Post = Callable[[str, dict[str, Any]], http.client.HTTPResponse]


@pytest.fixture
def post(vertex_emulator: VertexEmulator) -> Iterator[Post]:
    """POSTs JSON to the emulator; every connection is closed at the end of the test."""
    connections: list[http.client.HTTPConnection] = []

    def send(path: str, body: dict[str, Any]) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", vertex_emulator.port, timeout=30)
        connections.append(connection)
        connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        return connection.getresponse()

    yield send
    for connection in connections:
        connection.close()


def _events(response: http.client.HTTPResponse) -> Iterator[str]:
    buffer = b""
    while piece := response.read1(65536):
        buffer += piece
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            yield event.decode().removeprefix("data: ")


def test_v1beta1_chat_completions_stream_through_as_the_model_writes(deployed, post: Post) -> None:
    emulator, endpoint, truth = deployed
    body = {**CHAT, "max_tokens": 20, "stream": True, "stream_options": {"include_usage": True}}
    response = post(f"/v1beta1/{endpoint}/chat/completions", body)
    assert response.status == 200 and response.getheader("Content-Type") == "text/event-stream"
    events = _events(response)
    first_content = next(e for e in events if '"content": "' in e and '"role"' not in e)
    assert json.loads(first_content)["choices"][0]["delta"]["content"]
    assert truth == [], "the first token reached the client while the model was still generating"
    rest = list(events)
    assert rest[-1] == "[DONE]"
    assert json.loads(rest[-2])["usage"]["completion_tokens"] == 20
    assert len(truth) == 1 and len(truth[0]["token_ms"]) == 20
    assert emulator.predict_statuses == {200: 1}


def test_stream_raw_predict_passes_an_openai_body_to_the_predict_route(deployed, post: Post) -> None:
    _, endpoint, _ = deployed
    body = {**CHAT, "max_tokens": 3, "stream": True}
    response = post(f"/v1/{endpoint}:streamRawPredict", body)
    assert response.status == 200
    events = list(_events(response))
    assert events[-1] == "[DONE]"
    assert json.loads(events[0])["object"] == "chat.completion.chunk"


def test_a_non_streamed_chat_completion_passes_through_whole(deployed, post: Post) -> None:
    _, endpoint, _ = deployed
    response = post(f"/v1/{endpoint}/chat/completions", {**CHAT, "max_tokens": 4})
    answer = json.loads(response.read())
    assert response.status == 200 and answer["usage"]["completion_tokens"] == 4


def test_model_server_errors_and_injected_faults_keep_their_status(deployed, post: Post) -> None:
    emulator, endpoint, _ = deployed
    refused = post(f"/v1beta1/{endpoint}/chat/completions", {**CHAT, "max_tokens": 0})
    error = json.loads(refused.read())["error"]
    assert refused.status == 400 and error["status"] == "INVALID_ARGUMENT"
    assert "max_tokens" in error["message"]
    emulator.fail_requests(429, kind="chatCompletions")
    throttled = post(f"/v1beta1/{endpoint}/chat/completions", {**CHAT, "max_tokens": 2})
    assert throttled.status == 429 and json.loads(throttled.read())["error"]["status"] == "RESOURCE_EXHAUSTED"
    missing = post("/v1beta1/projects/p/locations/us-central1/endpoints/9/chat/completions", CHAT)
    assert missing.status == 404


def test_a_stream_the_model_server_breaks_reaches_the_client_broken(
    vertex_emulator: VertexEmulator, post: Post
) -> None:
    import socket
    import threading

    first = b'data: {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n'
    listener = socket.create_server(("127.0.0.1", 0))

    def break_after_one_event() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            connection.sendall(head + b"%x\r\n%s\r\n" % (len(first), first))

    peer = threading.Thread(target=break_after_one_event, daemon=True)
    peer.start()
    with listener:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        names = deploy_local_model(
            vertex_emulator.api_endpoint, project="p", location="us-central1", model_url=url
        )
        response = post(f"/v1beta1/{names['endpoint']}/chat/completions", {**CHAT, "stream": True})
        assert response.status == 200
        assert response.read1(65536) == first, "what the model server sent before breaking arrives"
        with pytest.raises(http.client.IncompleteRead):
            response.read()
        peer.join(5)
