"""Keeps the load generator's own work out of the response times it records (``docs/measurement.md``).

Locust's ``FastHttpUser`` starts a request's clock, then geventhttpclient takes a kept-alive
connection from its pool and checks that the connection is still idle with ``select.select(..., 0)``.
Under gevent that call ends with ``gevent.sleep(0)``: the request yields to every other ready
greenlet *with its clock running*, before a byte is sent, so it is charged for other users' work
(measured against a server that logs its own time, 20 ms service, 12 users: +1.4 ms at p50, +5.8 ms
at p99 with the yield; +0.7 ms and +0.8 ms without). ``install`` makes that check call the operating
system's ``select`` directly: the same zero-timeout check, which never blocks, without the yield.

Imported only inside Locust processes (our plugin installs it in each).
"""

import logging
from typing import Any

import gevent.monkey
from geventhttpclient import connectionpool

logger = logging.getLogger(__name__)
_select = gevent.monkey.get_original("select", "select")


def _is_socket_alive(self: Any, sock: Any) -> bool:
    """geventhttpclient's idle-connection check (readable while idle: closed or dirty), without a yield."""
    if sock is None:
        return False
    try:
        if sock.fileno() < 0:
            return False
        readable, _, _ = _select([sock], [], [], 0.0)
        return not readable
    except (OSError, ValueError):
        return False


def install() -> None:
    """Replaces geventhttpclient's connection check, if this version has the one we know."""
    if hasattr(connectionpool.ConnectionPool, "_is_socket_alive"):
        connectionpool.ConnectionPool._is_socket_alive = _is_socket_alive  # type: ignore[method-assign]
    else:
        logger.warning("geventhttpclient has no ConnectionPool._is_socket_alive: request clocks unchanged")
