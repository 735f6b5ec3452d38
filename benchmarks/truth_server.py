"""The ground truth for latency: a loopback ``:predict`` server that logs the time it spent on each request.

The generator's own samples cannot check the generator (they share whatever delay it adds), so the
truth benchmark (``benchmarks/bench_truth.py``) and the measurement tests compare a client's
percentiles with what this server logged for the same requests. It is an asyncio protocol with
HTTP/1.1 keep-alive, TCP_NODELAY and one write per response (headers and body together, so Nagle and
delayed ACKs cannot add 40 ms). Each request's service time is drawn from a seeded log-normal
distribution with the given median; the logged time runs from the request fully read to the response
handed to the kernel.

It runs as its own process (its own interpreter, so the client under test cannot slow it) and stops by
itself: on SIGTERM, when its parent exits, or after ``--lifetime-s``. ``TruthServer`` starts one on a
free port of 127.0.0.1 and returns the logged times (ms) when it stops.
"""

import argparse
import asyncio
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from vertex_loadtest.ports import free_port

BODY = b'{"predictions": [[0.42]], "deployedModelId": "1"}'
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)
#: Spread of the log-normal service time: p99 is about twice the median.
SIGMA = 0.3


class _Connection(asyncio.Protocol):
    """One keep-alive connection: requests are answered in order, each after its drawn service time."""

    def __init__(self, server: "_Server"):
        self.server = server
        self.buffer = b""
        self.queue: deque[float] = deque()  # when each request waiting its turn was fully read
        self.busy = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = _content_length(self.buffer[:end])
            if len(self.buffer) < end + 4 + length:
                return
            self.queue.append(time.perf_counter())
            self.buffer = self.buffer[end + 4 + length :]
            self._next()

    def _next(self) -> None:
        if self.busy or not self.queue:
            return
        self.busy = True
        read_at = self.queue.popleft()
        asyncio.get_running_loop().call_later(self.server.draw(), self._respond, read_at)

    def _respond(self, read_at: float) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(RESPONSE)
        self.server.samples.append((time.perf_counter() - read_at) * 1000)
        self.busy = False
        self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


class _Server:
    def __init__(self, median_ms: float, seed: int):
        self.rng = random.Random(seed)
        self.mu = math.log(median_ms / 1000)
        self.samples: list[float] = []

    def draw(self) -> float:
        return self.rng.lognormvariate(self.mu, SIGMA)


async def _serve(port: int, median_ms: float, seed: int, samples_path: Path, lifetime_s: float) -> None:
    loop = asyncio.get_running_loop()
    server = _Server(median_ms, seed)
    listener = await loop.create_server(lambda: _Connection(server), "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.call_later(lifetime_s, stop.set)
    parent = os.getppid()

    async def watch_parent() -> None:
        while os.getppid() == parent:
            await asyncio.sleep(1)
        stop.set()

    watcher = asyncio.create_task(watch_parent())
    print("ready", flush=True)
    await stop.wait()
    watcher.cancel()
    listener.close()
    samples_path.write_text("".join(f"{value:.4f}\n" for value in server.samples), encoding="utf-8")


class TruthServer:
    """Starts the server as a child process; ``stop()`` returns every logged service time (ms).

    Args:
        median_ms: Median service time.
        seed: Seed of the service-time draws.
        lifetime_s: The server exits by itself after this long, whatever happens to its caller.
    """

    def __init__(self, median_ms: float, seed: int = 1, lifetime_s: float = 600):
        self.median_ms, self.seed, self.lifetime_s = median_ms, seed, lifetime_s
        self.url = ""

    def __enter__(self) -> "TruthServer":
        self._dir = tempfile.TemporaryDirectory(prefix="truth-server-")
        self.samples_path = Path(self._dir.name) / "samples.txt"
        port = free_port()
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "benchmarks.truth_server", "--port", str(port)),
                *("--median-ms", f"{self.median_ms:g}", "--seed", str(self.seed)),
                *("--samples", str(self.samples_path), "--lifetime-s", f"{self.lifetime_s:g}"),
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            self.process.kill()
            raise RuntimeError("the truth server did not start")
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> list[float]:
        """Stops the server and returns the time it spent on each request, in ms, in serving order."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.communicate(timeout=30)  # waits, and closes the stdout pipe
        if not self.samples_path.exists():
            return []
        return [float(line) for line in self.samples_path.read_text(encoding="utf-8").split()]

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._dir.cleanup()


def nearest_rank(samples: list[float], quantile: float) -> float:
    """The nearest-rank ``quantile`` (0..1] of raw samples (the project's percentile definition)."""
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(quantile * len(ordered) - 1e-9)) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--median-ms", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--samples", type=Path, required=True, help="where to write the logged times (ms)")
    parser.add_argument("--lifetime-s", type=float, default=600.0)
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.median_ms, args.seed, args.samples, args.lifetime_s))


if __name__ == "__main__":
    main()
