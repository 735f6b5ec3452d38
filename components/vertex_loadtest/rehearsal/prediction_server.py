"""A prediction server on loopback that speaks the Vertex AI ``:predict`` contract, with faults on demand.

It answers ``POST <anything>:predict`` (and ``AIP_PREDICT_ROUTE``) with ``{"predictions": [...]}`` and
``GET AIP_HEALTH_ROUTE`` with 200, like a custom serving container. What a request costs and how it
fails is injected, so tests know the ground truth:

- ``latency``: ``"20ms"``, ``"uniform:5ms:50ms"`` or ``"choice:10ms,200ms,1.5s"`` (equally likely);
- ``error_rate`` (answered with ``error_status``, 503 by default), ``malformed_rate`` (200 with a body
  that is not JSON), ``reset_rate`` (the connection is dropped), ``hang_rate`` (never answered);
- ``predict``: an optional function from instances to predictions (the rehearsal's real model);
- ``slots``: serve at most this many requests at once (the rest queue, as on one replica with that
  many workers), so a ``latency`` of ``s`` gives a known capacity of ``slots / s`` requests per second;
  a queued request whose client hung up is dropped (0: no limit);
- ``authorize``: an optional check of the ``Authorization`` header; False answers 401.

Usable in-process (``with PredictionServer(...) as server: server.url``) or as a process
(``python -m vertex_loadtest.rehearsal.prediction_server --port 8080 --latency 20ms``).
"""

import argparse
import asyncio
import json
import os
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vertex_loadtest.errors import BadInput

Predict = Callable[[list[Any]], list[Any]]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")
_REASONS = {
    200: "OK",
    401: "Unauthorized",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def parse_duration(text: str) -> float:
    """Returns seconds for ``"250ms"`` or ``"1.5s"``."""
    match = _DURATION.match(text)
    if not match:
        raise BadInput(f"latency {text!r} is not a duration: write it like 20ms or 1.5s")
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value


def latency_sampler(spec: str) -> Callable[[random.Random], float]:
    """Returns a function drawing one delay in seconds from a latency spec (see the module docstring)."""
    kind, _, rest = spec.partition(":")
    if kind == "uniform":
        low, _, high = rest.partition(":")
        low_s, high_s = parse_duration(low), parse_duration(high)
        return lambda rng: rng.uniform(low_s, high_s)
    if kind == "choice":
        choices = [parse_duration(item) for item in rest.split(",")]
        return lambda rng: rng.choice(choices)
    fixed = parse_duration(spec)
    return lambda rng: fixed


@dataclass
class Behaviour:
    """How the server answers; every rate is a probability per request."""

    latency: str = "0ms"
    error_rate: float = 0.0
    error_status: int = 503
    malformed_rate: float = 0.0
    reset_rate: float = 0.0
    hang_rate: float = 0.0
    seed: int = 0
    predict: Predict | None = None
    authorize: Callable[[str | None], bool] | None = None
    slots: int = 0

    def __post_init__(self) -> None:
        self.sample_latency = latency_sampler(self.latency)

    def draw_outcome(self, rng: random.Random) -> str:
        """Returns "reset", "hang", "error", "malformed" or "ok" with the configured probabilities."""
        draw = rng.random()
        for outcome, rate in (
            ("reset", self.reset_rate),
            ("hang", self.hang_rate),
            ("error", self.error_rate),
            ("malformed", self.malformed_rate),
        ):
            if draw < rate:
                return outcome
            draw -= rate
        return "ok"


def _echo(instances: list[Any]) -> list[Any]:
    return [{"echo": instance} for instance in instances]


@dataclass
class _Counters:
    requests: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.requests += 1
        self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + 1


class PredictionServer:
    """The server; starts on a background thread on enter, stops on exit."""

    def __init__(self, behaviour: Behaviour | None = None, host: str = "127.0.0.1", port: int = 0):
        self.behaviour = behaviour or Behaviour()
        self.host, self.port = host, port
        self.predict_route = os.environ.get("AIP_PREDICT_ROUTE", "/predict")
        self.health_route = os.environ.get("AIP_HEALTH_ROUTE", "/health")
        self.counters = _Counters()
        self._rng = random.Random(self.behaviour.seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._slots = asyncio.Semaphore(self.behaviour.slots) if self.behaviour.slots else None
        self._readers: dict[asyncio.StreamWriter, asyncio.StreamReader] = {}  # to see a client hang up

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> "PredictionServer":
        self._thread = threading.Thread(target=self._serve_in_thread, name="prediction-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("prediction server did not start within 10 s")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _serve_in_thread(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(self.start())
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    async def start(self) -> asyncio.Server:
        """Starts listening on the running loop; fills in the port when it was 0."""
        server = await asyncio.start_server(self._handle_connection, self.host, self.port, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._readers[writer] = reader
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                method, path, headers, body = request
                if not await self._respond(method, path, headers, body, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            del self._readers[writer]
            writer.close()

    async def _respond(
        self, method: str, path: str, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        """Writes one response; returns False when the connection must be dropped."""
        if method == "GET" and path == self.health_route:
            _write(writer, 200, b"{}")
            return True
        if method != "POST" or not (path.endswith(":predict") or path == self.predict_route):
            _write(writer, 404, b'{"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}')
            return True
        behaviour, rng = self.behaviour, self._rng
        if behaviour.authorize is not None and not behaviour.authorize(headers.get("authorization")):
            self.counters.count("unauthorized")
            _write(writer, 401, b'{"error": {"code": 401, "status": "UNAUTHENTICATED"}}')
            return True
        outcome = behaviour.draw_outcome(rng)
        if self._slots is None:
            await asyncio.sleep(behaviour.sample_latency(rng))
        elif not await _serve_in_slot(self._slots, self._readers[writer], behaviour.sample_latency(rng)):
            return False  # the client left while the request queued
        self.counters.count(outcome)
        if outcome == "reset":
            writer.transport.abort()
            return False
        if outcome == "hang":
            await asyncio.sleep(3600)
            return False
        if outcome == "error":
            status = behaviour.error_status
            _write(writer, status, json.dumps({"error": {"code": status, "message": "injected"}}).encode())
            return True
        if outcome == "malformed":
            _write(writer, 200, b"<html>not json</html>")
            return True
        try:
            instances = json.loads(body)["instances"]
        except (ValueError, KeyError, TypeError):
            message = {"error": {"code": 400, "message": 'the body must be {"instances": [...]}'}}
            _write(writer, 400, json.dumps(message).encode())
            return True
        predictions = (behaviour.predict or _echo)(instances)
        _write(writer, 200, json.dumps({"predictions": predictions, "deployedModelId": "local"}).encode())
        return True


async def _serve_in_slot(slots: asyncio.Semaphore, reader: asyncio.StreamReader, seconds: float) -> bool:
    """Waits for a free slot and holds it for ``seconds``; False when the client hung up first."""
    acquire = asyncio.ensure_future(slots.acquire())
    hangup = asyncio.ensure_future(reader.read(1))  # an HTTP/1.1 client sends nothing until answered
    await asyncio.wait({acquire, hangup}, return_when=asyncio.FIRST_COMPLETED)
    if not acquire.done():
        acquire.cancel()
        return False
    hangup.cancel()
    try:
        await asyncio.sleep(seconds)
    finally:
        slots.release()
    return True


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    line = await reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers = {}
    while True:
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return method, path, headers, body


def _write(writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("AIP_HTTP_PORT", "8080")))
    parser.add_argument("--latency", default="0ms")
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--error-status", type=int, default=503)
    parser.add_argument("--slots", type=int, default=0, help="requests served at once (0: no limit)")
    args = parser.parse_args(argv)
    behaviour = Behaviour(
        latency=args.latency, error_rate=args.error_rate, error_status=args.error_status, slots=args.slots
    )
    server = PredictionServer(behaviour, port=args.port)

    async def serve() -> None:
        async with await server.start() as listening:
            print(f"serving :predict on {server.url}", flush=True)
            await listening.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
