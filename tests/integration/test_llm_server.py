"""The rehearsal's generative model server: vLLM's OpenAI contract, the Vertex ``:predict`` shape of
the vLLM container, continuous batching with a capacity, and the server's own timing truth."""

import asyncio
import http.client
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from vertex_loadtest.rehearsal.llm_engine import Costs, Engine, Sequence
from vertex_loadtest.rehearsal.llm_server import GenerativeServer
from vertex_loadtest.rehearsal.text_model import EOS, TrigramModel, tokenize

MODEL = TrigramModel()
CHAT = {"model": "m", "messages": [{"role": "user", "content": "How does the event loop run a task?"}]}


@pytest.fixture
def server() -> Iterator[tuple[GenerativeServer, list[dict[str, Any]]]]:
    truth: list[dict[str, Any]] = []
    with GenerativeServer(Costs(decode_base_ms=1.0), truth=truth.append, model=MODEL) as running:
        yield running, truth


def post(server: GenerativeServer, path: str, body: Any) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", path, body if isinstance(body, bytes) else json.dumps(body))
        response = connection.getresponse()
        return response.status, response.getheader("content-type", ""), response.read()
    finally:
        connection.close()


def events(raw: bytes) -> list[str]:
    blocks = raw.decode().split("\n\n")
    assert blocks[-1] == "", "a stream ends with a complete event"
    assert all(block.startswith("data: ") for block in blocks[:-1])
    return [block.removeprefix("data: ") for block in blocks[:-1]]


def test_the_model_is_trained_on_the_standard_library_and_follows_the_prompt() -> None:
    assert MODEL.vocabulary_size > 1000
    assert MODEL.context("the event loop") == ("event", "loop")
    assert MODEL.context("zzqx unknownword") == (EOS, EOS)
    greedy = [list(MODEL.generate("the event loop", random.Random(seed), temperature=0)) for seed in (1, 2)]
    assert greedy[0] == greedy[1], "temperature 0 is greedy"
    first, second = (MODEL.generate("the event", random.Random(9), 1.0, ignore_eos=True) for _ in range(2))
    assert [next(first) for _ in range(50)] == [next(second) for _ in range(50)], "seeded"


def test_streamed_chat_sends_role_then_one_event_per_token_then_usage_then_done(server) -> None:
    running, truth = server
    request = {**CHAT, "max_tokens": 12, "ignore_eos": True, "stream": True}
    status, content_type, raw = post(
        running, "/v1/chat/completions", {**request, "stream_options": {"include_usage": True}}
    )
    assert (status, content_type) == (200, "text/event-stream")
    data = events(raw)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    contents = [
        c["choices"][0]["delta"]["content"]
        for c in chunks
        if c["choices"] and "content" in c["choices"][0]["delta"]
    ]
    assert len(contents) - 1 == 12, "the role chunk carries no content; then one token per event"
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == []
    prompt_tokens = len(tokenize("user: " + CHAT["messages"][0]["content"]))
    assert chunks[-1]["usage"] == {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": 12,
        "total_tokens": prompt_tokens + 12,
    }
    record = truth[-1]
    assert record["completion_tokens"] == 12 and len(record["token_ms"]) == 12
    assert record["token_ms"] == sorted(record["token_ms"])
    assert record["ttft_ms"] == pytest.approx(record["token_ms"][0], abs=0.001)
    assert record["e2e_ms"] == pytest.approx(record["token_ms"][-1], abs=0.001)


def test_usage_only_when_asked_and_several_tokens_per_event() -> None:
    with GenerativeServer(Costs(decode_base_ms=1.0, tokens_per_event=3), model=MODEL) as running:
        _, _, raw = post(
            running,
            "/v1/completions",
            {"prompt": "Return the", "max_tokens": 7, "ignore_eos": True, "stream": True},
        )
    chunks = [json.loads(item) for item in events(raw)[:-1]]
    texts = [c["choices"][0]["text"] for c in chunks if c["choices"][0]["text"]]
    assert len(texts) == 3 and len(tokenize("".join(texts))) == 7, "3 + 3 + 1 tokens in 3 events"
    assert all("usage" not in chunk for chunk in chunks)


def test_non_streamed_chat_completions_and_vertex_predict_shapes(server) -> None:
    running, _ = server
    status, _, raw = post(running, "/v1/chat/completions", {**CHAT, "max_tokens": 5, "ignore_eos": True})
    answer = json.loads(raw)
    assert status == 200 and answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["role"] == "assistant"
    assert (
        len(tokenize(answer["choices"][0]["message"]["content"])) == 5 == answer["usage"]["completion_tokens"]
    )
    instances = [
        {"prompt": "Return a list", "max_tokens": 4, "temperature": 0.5, "ignore_eos": True},
        {"prompt": "x", "max_tokens": 2},
    ]
    status, _, raw = post(running, running.predict_route, {"instances": instances})
    predictions = json.loads(raw)["predictions"]
    assert status == 200 and len(predictions) == 2
    assert predictions[0].startswith("Prompt:\nReturn a list\nOutput:\n")
    assert len(tokenize(predictions[0].split("Output:\n", 1)[1])) == 4


def test_the_predict_route_serves_openai_bodies_as_stream_raw_predict_passes_them(server) -> None:
    running, _ = server
    status, content_type, raw = post(
        running, running.predict_route, {**CHAT, "max_tokens": 3, "stream": True}
    )
    assert (status, content_type) == (200, "text/event-stream") and events(raw)[-1] == "[DONE]"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Expecting property name"),
        ({"messages": []}, "messages must be a non-empty list"),
        ({**CHAT, "max_tokens": 0}, "max_tokens must be a positive integer"),
        ({**CHAT, "max_tokens": 9000}, "maximum context length"),
    ],
)
def test_bad_requests_are_answered_400_in_the_openai_error_shape(server, body, message) -> None:
    status, _, raw = post(server[0], "/v1/chat/completions", body)
    assert status == 400 and message in json.loads(raw)["message"]


def test_beyond_capacity_requests_queue_and_a_bigger_batch_costs_more_per_step() -> None:
    engine = Engine(MODEL, Costs(decode_base_ms=0.0, decode_per_seq_ms=0.0, max_seqs=2))
    order: list[tuple[int, str | None]] = []
    batch_sizes: list[int] = []

    def sequence(number: int) -> Sequence:
        def emit(seq: Sequence, tokens: list[str], finish_reason: str | None) -> None:
            order.append((number, finish_reason))
            batch_sizes.append(len(engine.running))

        return Sequence("the", 1, 3, 1.0, random.Random(number), emit, ignore_eos=True)

    async def run() -> None:
        for number in range(4):
            engine.submit(sequence(number))
        while engine.waiting or engine.running:
            await engine.step()

    asyncio.run(run())
    assert max(batch_sizes) == 2
    first_of_late = min(order.index((n, None)) for n in (2, 3))
    assert order.index((0, "length")) < first_of_late and order.index((1, "length")) < first_of_late
    costs = Costs(decode_base_ms=8, decode_per_seq_ms=0.05, prefill_per_token_ms=0.02)
    assert costs.step_ms(batch=10, prefill_tokens=100) == pytest.approx(8 + 0.5 + 2)
    assert costs.step_ms(batch=100, prefill_tokens=0) > costs.step_ms(batch=10, prefill_tokens=0)


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_the_fast_content_chunk_is_byte_for_byte_the_general_one(api) -> None:
    from vertex_loadtest.rehearsal.llm_server import _Response

    response = _Response(api, "m", writer=None, stream=False)  # type: ignore[arg-type]
    for text in ("word", ' "quoted" \\ é', "\n", "\0"):
        assert response.content(text) == response.chunk(content=text)


def test_the_truth_starts_when_the_kernel_received_the_request_not_when_the_loop_got_to_it() -> None:
    import threading
    import time

    truth: list[dict[str, Any]] = []
    with GenerativeServer(Costs(decode_base_ms=1.0), truth=truth.append, model=MODEL) as running:
        blocked = threading.Event()

        def block() -> None:
            blocked.set()
            time.sleep(0.3)  # the server's loop is busy: it cannot read the request meanwhile

        running._loop.call_soon_threadsafe(block)  # type: ignore[union-attr]
        blocked.wait(5)
        sent = time.monotonic()
        status, _, _ = post(running, "/v1/completions", {"prompt": "the", "max_tokens": 2, "stream": True})
    assert status == 200
    assert sent <= truth[0]["arrival"] < sent + 0.15, "stamped on receipt, not 0.3 s later"
    assert truth[0]["ttft_ms"] >= 150, "the loop's delay is in the server's own TTFT"
