"""The rehearsal's generative model server: vLLM's OpenAI-compatible contract on loopback.

- ``POST /v1/chat/completions`` and ``POST /v1/completions``, streamed (``"stream": true``: one
  server-sent event per write, ``choices[0].delta.content`` or ``choices[0].text``, a final chunk with
  ``usage`` when ``stream_options.include_usage``, then ``data: [DONE]``) or not;
- the Vertex AI ``:predict`` shape of the vLLM serving container on ``AIP_PREDICT_ROUTE``:
  ``{"instances": [{"prompt", "max_tokens", "temperature"}]}`` answers
  ``{"predictions": ["Prompt:\\n...\\nOutput:\\n..."]}``; a body with ``messages`` or ``prompt`` there
  (what ``:streamRawPredict`` passes through) is served as chat or completions;
- ``GET AIP_HEALTH_ROUTE`` and ``GET /health``.

Tokens come from ``TrigramModel`` scheduled by ``Engine`` (continuous batching, prefill, a capacity).
The server logs its own truth per request (``truth``: a callable given one dict per finished request):
arrival (the kernel's receive time of the request's first bytes: ``arrival_stamps``), queueing, the
time of every content event it wrote (``token_ms``, from arrival), TTFT, E2E, token counts, and
``server_lag_ms``: how late its step loop woke while the request ran (a starved server writes late).

Run it as Vertex would run the container::

    AIP_HTTP_PORT=8081 python -m vertex_loadtest.rehearsal.llm_server --truth-log truth.jsonl
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import time
from collections.abc import Callable
from typing import Any

from vertex_loadtest.rehearsal.arrival_stamps import StampingReader, listening_socket
from vertex_loadtest.rehearsal.llm_engine import Costs, Engine, Sequence
from vertex_loadtest.rehearsal.prediction_server import PredictionServer, _write
from vertex_loadtest.rehearsal.text_model import TrigramModel, detokenize, tokenize

MODEL_NAME = "rehearsal-trigram"
MAX_MODEL_LEN = 8192
Truth = Callable[[dict[str, Any]], None]


class BadRequest(ValueError):
    """A request the OpenAI contract refuses (answered 400)."""


class GenerativeServer(PredictionServer):
    """The server; ``with GenerativeServer() as server: server.url`` runs it on a background thread.

    Args:
        costs: The simulated accelerator's step costs and capacity.
        truth: Receives the server's own timing record of each finished request.
        send_usage: False leaves ``usage`` out of streams (as servers that ignore
            ``stream_options`` do), so clients must count events.
        ignore_eos: Always generate ``max_tokens`` (vLLM's ``ignore_eos`` on every request), as
            benchmarks want.
        port: TCP port on 127.0.0.1 (0: any free one).
    """

    def __init__(
        self,
        costs: Costs | None = None,
        truth: Truth | None = None,
        send_usage: bool = True,
        ignore_eos: bool = False,
        model: TrigramModel | None = None,
        port: int = 0,
    ):
        super().__init__(port=port)
        self.model = model or TrigramModel()
        self.engine = Engine(self.model, costs)
        self.truth = truth
        self.send_usage = send_usage
        self.ignore_eos = ignore_eos
        self._ids = itertools.count(1)
        self._engine_task: asyncio.Task[None] | None = None
        self._readers: dict[asyncio.StreamWriter, asyncio.StreamReader] = {}

    async def start(self) -> asyncio.Server:
        """Listens with readers that stamp each request's arrival (``arrival_stamps``); starts the engine."""
        loop = asyncio.get_running_loop()

        def protocol() -> asyncio.StreamReaderProtocol:
            return asyncio.StreamReaderProtocol(StampingReader(loop=loop), self._handle_connection, loop=loop)

        server = await loop.create_server(protocol, sock=listening_socket(self.host, self.port))
        self.port = server.sockets[0].getsockname()[1]
        self._engine_task = loop.create_task(self.engine.run())
        return server

    async def _handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._readers[writer] = reader  # its connection has TCP_NODELAY (StampedSocket.accept)
        try:
            await super()._handle_connection(reader, writer)
        finally:
            self._readers.pop(writer, None)

    async def _respond(
        self, method: str, path: str, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        reader = self._readers.get(writer)
        arrival = reader.take_arrival() if isinstance(reader, StampingReader) else time.monotonic()
        route = path.split("?", 1)[0]
        if method == "GET" and route in (self.health_route, "/health"):
            _write(writer, 200, b"{}")
            return True
        apis = {
            "/v1/chat/completions": "chat",
            "/v1/completions": "completions",
            self.predict_route: "vertex",
        }
        if method != "POST" or route not in apis:
            return await super()._respond(method, path, headers, body, writer)
        try:
            request = json.loads(body)
            if not isinstance(request, dict):
                raise BadRequest("the body must be a JSON object")
            api = apis[route]
            if api == "vertex":
                api = (
                    "predict"
                    if "instances" in request
                    else "chat"
                    if "messages" in request
                    else "completions"
                )
            if api == "predict":
                await self._predict(request, arrival, writer)
            else:
                await self._openai(api, request, arrival, writer)
        except (BadRequest, ValueError, TypeError) as error:
            message = {"object": "error", "message": str(error), "type": "BadRequestError", "code": 400}
            _write(writer, 400, json.dumps(message).encode())
        return not writer.is_closing()

    def _sequence(self, api: str, request: dict[str, Any], arrival: float) -> tuple[Sequence, str]:
        """Builds the engine's sequence from an OpenAI or Vertex instance body; returns it with its prompt."""
        if api == "chat":
            messages = request.get("messages")
            if not isinstance(messages, list) or not messages:
                raise BadRequest("messages must be a non-empty list of {role, content}")
            prompt = "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages)
        else:
            text = request.get("prompt")
            if not isinstance(text, str):
                raise BadRequest("prompt must be a string")
            prompt = text
        max_tokens = request.get("max_completion_tokens", request.get("max_tokens", 16))
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise BadRequest(f"max_tokens must be a positive integer, not {max_tokens!r}")
        prompt_tokens = len(tokenize(prompt))
        if prompt_tokens + max_tokens > MAX_MODEL_LEN:
            raise BadRequest(
                f"This model's maximum context length is {MAX_MODEL_LEN} tokens; the request asks for "
                f"{prompt_tokens} in the prompt and {max_tokens} to generate"
            )
        seed = request.get("seed")
        sequence = Sequence(
            prompt=prompt,
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
            temperature=float(request.get("temperature", 1.0)),
            rng=random.Random(seed if isinstance(seed, int) else next(self._ids)),
            emit=lambda *_: None,
            ignore_eos=self.ignore_eos or bool(request.get("ignore_eos", False)),
            arrival=arrival,
        )
        return sequence, prompt

    async def _openai(
        self, api: str, request: dict[str, Any], arrival: float, writer: asyncio.StreamWriter
    ) -> None:
        sequence, _ = self._sequence(api, request, arrival)
        stream = bool(request.get("stream", False))
        include_usage = (
            stream and self.send_usage and bool((request.get("stream_options") or {}).get("include_usage"))
        )
        response = _Response(api, request.get("model") or MODEL_NAME, writer, stream)
        text: list[str] = []
        token_times: list[float] = []
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def emit(sequence: Sequence, tokens: list[str], finish_reason: str | None) -> None:
            if writer.is_closing():
                sequence.cancelled = True
                if not done.done():
                    done.set_result("cancelled")
                return
            start = len(text)
            text.extend(detokenize(token, start + i == 0) for i, token in enumerate(tokens))
            if stream:
                if tokens and start == 0:
                    response.event(response.chunk(role=True))
                if tokens:
                    response.event(response.content("".join(text[start:])))
                    token_times.append(time.monotonic())
                if finish_reason is not None:
                    response.event(response.chunk(finish_reason=finish_reason))
            if finish_reason is not None and not done.done():
                done.set_result(finish_reason)

        sequence.emit = emit
        self.engine.submit(sequence)
        finish_reason = await done
        if finish_reason == "cancelled":
            writer.transport.abort()
            return
        self._log(api, stream, sequence, token_times or [time.monotonic()])
        usage = _usage(sequence)
        if stream:
            if include_usage:
                response.event(response.chunk(usage=usage))
            response.event(b"[DONE]")
            response.end()
        else:
            _write(writer, 200, json.dumps(response.whole("".join(text), finish_reason, usage)).encode())

    async def _predict(self, request: dict[str, Any], arrival: float, writer: asyncio.StreamWriter) -> None:
        instances = request.get("instances")
        if not isinstance(instances, list) or not instances:
            raise BadRequest('the body must be {"instances": [{"prompt": ..., "max_tokens": ...}, ...]}')
        for instance in instances:
            if not isinstance(instance, dict):
                raise BadRequest("each instance must be an object with a prompt")
        loop = asyncio.get_running_loop()
        outputs = []
        for instance in instances:
            sequence, prompt = self._sequence("completions", instance, arrival)
            finished: asyncio.Future[list[str]] = loop.create_future()
            text: list[str] = []

            def emit(
                sequence: Sequence,
                tokens: list[str],
                reason: str | None,
                text: list[str] = text,
                done: asyncio.Future[list[str]] = finished,
            ) -> None:
                text.extend(detokenize(token, len(text) + i == 0) for i, token in enumerate(tokens))
                if reason is not None:
                    done.set_result(text)

            sequence.emit = emit
            self.engine.submit(sequence)
            outputs.append((sequence, prompt, finished))
        predictions = []
        for sequence, prompt, finished in outputs:
            predictions.append(f"Prompt:\n{prompt}\nOutput:\n{''.join(await finished)}")
            self._log("predict", False, sequence, [time.monotonic()])
        _write(writer, 200, json.dumps({"predictions": predictions}).encode())

    def _log(self, api: str, stream: bool, sequence: Sequence, token_times: list[float]) -> None:
        if self.truth is None:
            return
        start = sequence.arrival
        self.truth(
            {
                "api": api,
                "stream": stream,
                "arrival": start,
                "queued_ms": ((sequence.admitted or start) - start) * 1000,
                "ttft_ms": (token_times[0] - start) * 1000,
                "e2e_ms": (token_times[-1] - start) * 1000,
                "token_ms": [round((t - start) * 1000, 3) for t in token_times] if stream else [],
                "prompt_tokens": sequence.prompt_tokens,
                "completion_tokens": sequence.generated,
                "server_lag_ms": round(sequence.lag_ms, 3),
            }
        )


def _usage(sequence: Sequence) -> dict[str, int]:
    return {
        "prompt_tokens": sequence.prompt_tokens,
        "completion_tokens": sequence.generated,
        "total_tokens": sequence.prompt_tokens + sequence.generated,
    }


class _Response:
    """Writes one OpenAI response: chunked server-sent events, or a whole JSON body."""

    def __init__(self, api: str, model: str, writer: asyncio.StreamWriter, stream: bool):
        self.chat = api == "chat"
        self.head = {
            "id": f"{'chatcmpl' if self.chat else 'cmpl'}-{id(writer):x}{time.monotonic_ns():x}",
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": int(time.time()),
            "model": model,
        }
        self.writer = writer
        # A content chunk is this template around the JSON string of its text: no dict per token.
        self._content = self.chunk(content="\0").split(b'"\\u0000"')
        if stream:
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )

    def chunk(
        self,
        content: str = "",
        role: bool = False,
        finish_reason: str | None = None,
        usage: dict[str, int] | None = None,
    ) -> bytes:
        if usage is not None:
            return json.dumps({**self.head, "choices": [], "usage": usage}).encode()
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
            if content:
                delta["content"] = content
            choice: dict[str, Any] = {"index": 0, "delta": delta}
        else:
            choice = {"index": 0, "text": content}
        choice.update(logprobs=None, finish_reason=finish_reason)
        return json.dumps({**self.head, "choices": [choice]}).encode()

    def content(self, text: str) -> bytes:
        """The chunk carrying ``text``, the same bytes as ``chunk(content=text)``."""
        return json.dumps(text).encode().join(self._content)

    def event(self, data: bytes) -> None:
        """One server-sent event, written as one HTTP chunk in one write."""
        payload = b"data: " + data + b"\n\n"
        self.writer.write(b"%x\r\n%s\r\n" % (len(payload), payload))

    def end(self) -> None:
        self.writer.write(b"0\r\n\r\n")

    def whole(self, text: str, finish_reason: str, usage: dict[str, int]) -> dict[str, Any]:
        if self.chat:
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}}
            kind = "chat.completion"
        else:
            choice, kind = {"index": 0, "text": text}, "text_completion"
        choice.update(logprobs=None, finish_reason=finish_reason)
        return {**self.head, "object": kind, "choices": [choice], "usage": usage}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("AIP_HTTP_PORT", "8080")))
    parser.add_argument(
        "--truth-log", help="append the server's own timing of each request here (JSON lines)"
    )
    parser.add_argument("--max-seqs", type=int, default=Costs.max_seqs, help="sequences decoded at once")
    parser.add_argument("--decode-base-ms", type=float, default=Costs.decode_base_ms)
    parser.add_argument("--decode-per-seq-ms", type=float, default=Costs.decode_per_seq_ms)
    parser.add_argument("--prefill-per-token-ms", type=float, default=Costs.prefill_per_token_ms)
    parser.add_argument("--tokens-per-event", type=int, default=Costs.tokens_per_event)
    parser.add_argument("--no-usage", action="store_true", help="never send usage in streams")
    parser.add_argument("--ignore-eos", action="store_true", help="always generate max_tokens")
    args = parser.parse_args(argv)
    costs = Costs(
        decode_base_ms=args.decode_base_ms,
        decode_per_seq_ms=args.decode_per_seq_ms,
        prefill_per_token_ms=args.prefill_per_token_ms,
        max_seqs=args.max_seqs,
        tokens_per_event=args.tokens_per_event,
    )
    with contextlib.ExitStack() as stack:
        truth = None
        if args.truth_log:
            log = stack.enter_context(open(args.truth_log, "a", buffering=1, encoding="utf-8"))

            def truth(record: dict[str, Any]) -> None:
                log.write(json.dumps(record) + "\n")

        server = GenerativeServer(
            costs, truth=truth, send_usage=not args.no_usage, ignore_eos=args.ignore_eos, port=args.port
        )

        async def serve() -> None:
            async with await server.start() as listening:
                print(f"generative model server: {server.url} (health {server.health_route})", flush=True)
                await listening.serve_forever()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())


if __name__ == "__main__":
    main()
