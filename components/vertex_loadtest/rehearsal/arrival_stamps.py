"""When a request really arrived: the kernel's receive timestamp of its first bytes.

A server that stamps a request when its event loop gets to it stamps late whenever the loop is busy
or the process waits for a CPU, and its logged TTFT comes out short. Linux stamps every received
packet (``SO_TIMESTAMPNS``, read with ``recvmsg``), so the rehearsal's generative server listens on a
``StampedSocket``: each read records the kernel's time of the bytes, in ``time.monotonic``'s clock,
and ``StampingReader`` keeps that of the first read of each request. Where the option is missing,
the read's own time stands in.
"""

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterable
from typing import Any, SupportsIndex

_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # 35 on Linux; Python does not export it
_ANCILLARY = socket.CMSG_SPACE(16)
_latest = threading.local()  # a read's stamp, taken by the reader it feeds (same thread, same call)


class StampedSocket(socket.socket):
    """A TCP socket whose accepted connections note the kernel's receive time of every read."""

    def accept(self) -> tuple[socket.socket, Any]:
        fd, address = self._accept()  # type: ignore[attr-defined]
        connection = StampedSocket(self.family, self.type, self.proto, fileno=fd)
        with contextlib.suppress(OSError):  # no kernel stamps: the read's own time stands in
            connection.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data, ancillary, _, _ = self.recvmsg(bufsize, _ANCILLARY, flags)
        now, received = time.monotonic(), None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(payload) >= 16:
                seconds, nanoseconds = struct.unpack("qq", payload[:16])
                received = now - max(0.0, time.time() - (seconds + nanoseconds / 1e9))
        _latest.received = received if received is not None else now
        return data


def listening_socket(host: str, port: int) -> StampedSocket:
    """A non-blocking ``StampedSocket`` listening on ``host:port`` (0: any free port)."""
    listener = StampedSocket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    with contextlib.suppress(OSError):  # inherited by connections, so bytes sent before accept are stamped
        listener.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    listener.bind((host, port))
    listener.listen(1024)
    listener.setblocking(False)
    return listener


class StampingReader(asyncio.StreamReader):
    """Keeps the arrival of each request's first bytes (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        super().__init__(limit=2**16, loop=loop)
        self._arrival: float | None = None

    def feed_data(self, data: Iterable[SupportsIndex]) -> None:
        if self._arrival is None:
            self._arrival = _latest.__dict__.pop("received", None) or time.monotonic()
        super().feed_data(data)

    def take_arrival(self) -> float:
        """The current request's arrival; the next bytes fed start the next request."""
        arrival, self._arrival = self._arrival or time.monotonic(), None
        return arrival
