"""One streamed generation, read as it arrives: OpenAI-compatible SSE chunks (chat completions, or
completions through ``:streamRawPredict``) turned into the per-request numbers of ``docs/llm-metrics.md``.
Pure Python.

Definitions (those of vLLM's ``vllm bench serve``): the clock starts just before the request is sent;
a *content event* is a chunk whose first choice carries non-empty ``delta.content`` (or
``delta.reasoning_content``, or ``text`` for completions);

- TTFT: start to the first content event; ITL: each gap between consecutive content events;
- E2E: start to the last content event (what ``latency_ms`` reports for generative runs);
- output tokens: the final chunk's ``usage.completion_tokens`` when the server sends usage
  (``token_count_source`` ``usage``), else the number of content events (``events``);
- TPOT: (E2E - TTFT) / (output tokens - 1) with more than one output token; 0 otherwise, as vLLM
  counts it for goodput.

A stream fails as ``stream-broken`` when the connection ended before ``[DONE]`` or a
``finish_reason``, as ``empty-stream`` when it ended properly without content, and by the status
code of an ``error`` object sent inside the stream (``server`` when it has none).
"""

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from vertex_loadtest.errors import StreamFailure
from vertex_loadtest.locust_load_test.recorder import classify
from vertex_loadtest.locust_load_test.sse import EventParser
from vertex_loadtest.stats import ErrorKind

USAGE, EVENTS = "usage", "events"


@dataclass
class Generation:
    """The numbers of one successful streamed request (times in ms)."""

    text: str
    ttft_ms: float
    e2e_ms: float
    itl_ms: list[float]
    output_tokens: int
    input_tokens: int | None
    token_count_source: str

    @property
    def tpot_ms(self) -> float:
        """(E2E - TTFT) / (output tokens - 1); 0 with one output token (vLLM's convention)."""
        if self.output_tokens <= 1:
            return 0.0
        return (self.e2e_ms - self.ttft_ms) / (self.output_tokens - 1)


@dataclass
class StreamReader:
    """Reads one streamed response: ``feed`` each read with its arrival time, then ``finish``.

    Args:
        started: When the request was sent (seconds, the same clock as the arrival times).
    """

    started: float
    _parser: EventParser = field(default_factory=EventParser)
    _content_at: list[float] = field(default_factory=list)
    _text: list[str] = field(default_factory=list)
    _usage: dict[str, Any] | None = None
    _ended: bool = False  # [DONE] or a finish_reason was seen

    def feed(self, chunk: bytes, at: float) -> None:
        """Parses one read.

        Raises:
            StreamFailure: the stream carried an ``error`` object or a chunk that is not JSON.
        """
        for event in self._parser.feed(chunk, at):
            self._event(event.data, event.at)

    def finish(self, at: float) -> Generation:
        """Ends the stream (the connection closed, or ``[DONE]`` came) and returns its numbers.

        Raises:
            StreamFailure: ``stream-broken``, ``empty-stream`` or an error carried in the stream.
        """
        for event in self._parser.close(at):
            self._event(event.data, event.at)
        if not self._ended:
            raise StreamFailure(
                ErrorKind.STREAM_BROKEN,
                f"stream ended after {len(self._content_at)} content events, without [DONE] or finish_reason",
            )
        if not self._content_at:
            raise StreamFailure(ErrorKind.EMPTY_STREAM, "stream completed without any generated content")
        usage = self._usage or {}
        completion = _count(usage.get("completion_tokens"))
        prompt = usage.get("prompt_tokens")
        first, last = self._content_at[0], self._content_at[-1]
        return Generation(
            text="".join(self._text),
            ttft_ms=(first - self.started) * 1000,
            e2e_ms=(last - self.started) * 1000,
            itl_ms=[(b - a) * 1000 for a, b in itertools.pairwise(self._content_at)],
            output_tokens=completion or len(self._content_at),
            input_tokens=_count(prompt),
            token_count_source=USAGE if completion else EVENTS,
        )

    def _event(self, data: str, at: float) -> None:
        if data == "[DONE]":
            self._ended = True
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            raise StreamFailure(ErrorKind.MALFORMED, f"stream event is not JSON: {data[:120]!r}") from None
        if not isinstance(chunk, dict):
            raise StreamFailure(ErrorKind.MALFORMED, f"stream event is not a JSON object: {data[:120]!r}")
        if chunk.get("error") or chunk.get("object") == "error":
            raise _error_failure(chunk)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = usage
        choices = chunk.get("choices")
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            return
        choice = choices[0]
        delta = choice.get("delta")
        content = (
            (delta.get("content") or delta.get("reasoning_content")) if isinstance(delta, dict) else None
        ) or choice.get("text")
        if isinstance(content, str) and content:
            self._content_at.append(at)
            self._text.append(content)
        if choice.get("finish_reason"):
            self._ended = True


def _count(value: Any) -> int | None:
    """A token count from ``usage``, or None when it is not a positive whole number."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _error_failure(chunk: dict[str, Any]) -> StreamFailure:
    nested = chunk.get("error")
    error: dict[str, Any] = nested if isinstance(nested, dict) else chunk
    code = error.get("code")
    status = code if isinstance(code, int) and not isinstance(code, bool) else None
    message = str(error.get("message") or error)[:200]
    kind = classify(status, None) if status and status >= 400 else ErrorKind.SERVER
    return StreamFailure(kind, f"error inside the stream{f' (code {status})' if status else ''}: {message}")
