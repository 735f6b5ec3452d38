"""The server-sent-events parser and the streamed-generation reader: splits, line endings, every way
a stream breaks, and token counting from usage versus events."""

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vertex_loadtest.errors import StreamFailure
from vertex_loadtest.locust_load_test.sse import Event, EventParser
from vertex_loadtest.locust_load_test.streaming import EVENTS, USAGE, StreamReader
from vertex_loadtest.stats import ErrorKind

STREAM_BROKEN, EMPTY_STREAM = ErrorKind.STREAM_BROKEN, ErrorKind.EMPTY_STREAM


def chunk(content: str | None = None, finish: str | None = None, usage: dict | None = None) -> dict:
    choices = []
    if content is not None or finish is not None:
        choices = [{"index": 0, "delta": {}, "finish_reason": finish}]
    if content is not None:
        choices[0]["delta"]["content"] = content
    return {"object": "chat.completion.chunk", "choices": choices, **({"usage": usage} if usage else {})}


def sse(*payloads: dict | str, newline: str = "\n", space: bool = True) -> bytes:
    lines = []
    for payload in payloads:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        lines.append(f"data:{' ' if space else ''}{data}{newline}{newline}")
    return "".join(lines).encode()


def parse_in_reads(stream: bytes, cuts: list[int]) -> list[str]:
    parser = EventParser()
    events: list[Event] = []
    bounds = [0, *sorted(set(cuts)), len(stream)]
    for index, (start, end) in enumerate(itertools.pairwise(bounds)):
        events += parser.feed(stream[start:end], float(index))
    events += parser.close(float(len(bounds)))
    return [event.data for event in events]


# A valid stream: events of 1-3 data lines of any text without line breaks (non-ASCII included, so a
# multi-byte character can be cut between reads), comments, event types, any line ending.
_line = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=12)
_event = st.tuples(st.lists(_line, min_size=1, max_size=3), st.booleans(), st.booleans())


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text, expected = "", []
    for lines, comment, typed in draw(st.lists(_event, max_size=6)):
        if comment:
            text += f": keep-alive{newline}"
        if typed:
            text += f"event: message{newline}"
        for line in lines:
            space = draw(st.booleans())
            # "data: x" drops one space, so a value starting with a space needs the space form.
            text += f"data:{' ' if space or line.startswith(' ') else ''}{line}{newline}"
        text += newline
        expected.append("\n".join(lines))
    return text.encode(), expected


@settings(max_examples=300, deadline=None)
@given(streams(), st.data())
def test_any_split_of_a_valid_stream_gives_the_same_events(stream, data):
    raw, expected = stream
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=12))
    assert parse_in_reads(raw, cuts) == expected
    assert parse_in_reads(raw, list(range(len(raw)))) == expected  # one byte per read


def test_event_carries_the_arrival_time_of_the_read_that_completed_it():
    parser = EventParser()
    assert parser.feed(b"data: he", 1.0) == []
    assert parser.feed(b"llo\n", 2.0) == []
    assert parser.feed(b"\ndata: a\n\ndata: b\n\n", 3.0) == [
        Event("hello", "", 3.0),  # its blank line came with the third read
        Event("a", "", 3.0),
        Event("b", "", 3.0),
    ]


def test_crlf_split_between_reads_is_one_line_end():
    parser = EventParser()
    assert parser.feed(b"data: x\r", 1.0) == []
    assert parser.feed(b"\n\r", 2.0) == [Event("x", "", 2.0)]
    assert parser.feed(b"\ndata: y\r\n\r\n", 3.0) == [Event("y", "", 3.0)]


def test_comments_are_counted_and_never_events():
    parser = EventParser()
    assert parser.feed(b": ping\n\n:\n\ndata: z\n\n", 1.0) == [Event("z", "", 1.0)]
    assert parser.comments == 2


def test_close_keeps_a_complete_last_event_and_drops_a_cut_line():
    parser = EventParser()
    parser.feed(b"data: [DONE]\n", 1.0)
    assert parser.close(2.0) == [Event("[DONE]", "", 2.0)]
    parser = EventParser()
    parser.feed(b'data: {"choi', 1.0)
    assert parser.close(2.0) == []


def read(stream: bytes, reads: int = 1, started: float = 0.0):
    """Feeds ``stream`` in ``reads`` equal pieces at t = 1, 2, ... seconds; returns the generation."""
    reader = StreamReader(started)
    size = max(1, -(-len(stream) // reads))
    for index, start in enumerate(range(0, len(stream), size), start=1):
        reader.feed(stream[start : start + size], float(index))
    return reader.finish(float(reads + 1))


def test_metrics_follow_vllm_definitions():
    reader = StreamReader(started=10.0)
    reader.feed(sse(chunk(""), chunk("Hel")), 10.1)  # a role-only/empty delta is not content
    reader.feed(sse(chunk("lo")), 10.15)
    reader.feed(sse(chunk(" world", "stop")), 10.4)
    reader.feed(sse(chunk(usage={"prompt_tokens": 7, "completion_tokens": 5}), "[DONE]"), 10.5)
    generation = reader.finish(10.6)
    assert generation.text == "Hello world"
    assert generation.ttft_ms == pytest.approx(100)
    assert generation.e2e_ms == pytest.approx(400)  # the last content event, not the usage chunk
    assert generation.itl_ms == pytest.approx([50, 250])
    assert (generation.output_tokens, generation.input_tokens, generation.token_count_source) == (5, 7, USAGE)
    assert generation.tpot_ms == pytest.approx((400 - 100) / (5 - 1))


def test_without_usage_tokens_are_counted_from_content_events():
    generation = read(sse(chunk("a"), chunk("b c d"), chunk("e", "length"), "[DONE]"), reads=3)
    counted = (generation.output_tokens, generation.input_tokens, generation.token_count_source)
    assert counted == (3, None, EVENTS)


def test_one_token_has_no_tpot_but_zero_for_goodput():
    generation = read(sse(chunk("x", "stop"), "[DONE]"))
    assert generation.output_tokens == 1 and generation.tpot_ms == 0.0 and generation.itl_ms == []


def test_completions_text_and_no_space_after_data():
    completions = ({"choices": [{"text": "ab", "finish_reason": None}]}, {"choices": [{"text": "c"}]})
    stream = sse(*completions, space=False)
    generation = read(stream + b"data:[DONE]\n\n")
    assert generation.text == "abc"


@pytest.mark.parametrize(
    ("stream", "kind"),
    [
        (sse(chunk("a"), chunk("b")), STREAM_BROKEN),  # connection ended, no [DONE], no finish_reason
        (sse(chunk("a")) + b'data: {"choices": [{"del', STREAM_BROKEN),  # cut inside an event
        (b"", STREAM_BROKEN),  # 200 and nothing at all
        (sse(chunk(""), chunk(finish="stop"), "[DONE]"), EMPTY_STREAM),
        (b": keep-alive\n\ndata: [DONE]\n\n", EMPTY_STREAM),
        (sse(chunk("a"), {"error": {"message": "overloaded", "code": 503}}), "server"),
        (sse(chunk("a"), {"object": "error", "message": "slow down", "code": 429}), "throttled"),
        (sse({"error": {"message": "context too long", "code": 400}}), "client"),
        (sse({"error": "boom"}), "server"),
        (b"data: not json\n\n", "malformed"),
    ],
)
def test_broken_streams_fail_with_their_kind(stream, kind):
    with pytest.raises(StreamFailure) as failure:
        read(stream, reads=2)
    assert failure.value.kind == kind


def test_finish_reason_without_done_is_complete():
    assert read(sse(chunk("a"), chunk("b", "stop"))).output_tokens == 2


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=8),
    st.booleans(),
    st.sampled_from(["\n", "\r\n"]),
    st.data(),
)
def test_any_split_of_a_generation_gives_the_same_text_and_tokens(pieces, usage, newline, data):
    events = [chunk(piece) for piece in pieces[:-1]] + [chunk(pieces[-1], "stop")]
    if usage:
        events.append(chunk(usage={"prompt_tokens": 3, "completion_tokens": 2 * len(pieces)}))
    stream = sse(*events, ": ping", "[DONE]", newline=newline).replace(b"data: : ping", b": ping")
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=10))))
    reader = StreamReader(0.0)
    for index, (start, end) in enumerate(itertools.pairwise([0, *cuts, len(stream)]), start=1):
        reader.feed(stream[start:end], float(index))
    generation = reader.finish(100.0)
    assert generation.text == "".join(pieces)
    assert generation.output_tokens == (2 * len(pieces) if usage else len(pieces))
    assert len(generation.itl_ms) == len(pieces) - 1
    assert generation.ttft_ms <= generation.e2e_ms
