"""Event-loop lag of a Locust process: how late a greenlet wakes from a fixed sleep.

Every user of a Locust process shares one gevent loop. While one greenlet computes (a locustfile
parsing a big response, stats reporting, garbage collection), a response that has already arrived
waits, and its request's clock keeps running: the generator measures itself, not the endpoint. A
greenlet that sleeps ``INTERVAL_S`` and records how much later than that it woke measures exactly
that wait. An idle loop sleeps in ``epoll_wait``, whose timeout is whole milliseconds, so a timer
can fire up to 1 ms late with nothing else to do; that oversleep delays no response (a response
wakes the poll at once), so lateness counts from the later of the due time and the moment the loop
last woke from its poll (a libev check watcher). Imported only inside Locust processes (it imports
gevent).

The lag is recorded in a 0.2% histogram (``recorder.Latencies``) while users run, in every process
that runs users (a distributed master runs none, so it cannot delay a request); workers send theirs
to the master with their stats reports, and ``stats.json`` shows ``generator.loop_lag_ms``.
"""

import time
from typing import Any

import gevent
from gevent import get_hub
from locust.runners import STATE_RUNNING, STATE_SPAWNING

from vertex_loadtest.locust_load_test.recorder import Latencies

#: How often the probe wakes: 100 times a second costs well under 1% of a core.
INTERVAL_S = 0.01


class LoopLag:
    """The lag samples of this process (and, on a master, those its workers sent)."""

    def __init__(self) -> None:
        self.latencies = Latencies()
        self._polled_at = 0.0

    def _on_poll(self) -> None:
        self._polled_at = time.perf_counter()

    def probe(self, environment: Any) -> None:
        """Sleeps ``INTERVAL_S`` again and again, recording how late each wake-up was (runs forever)."""
        watcher = get_hub().loop.check()
        watcher.start(self._on_poll)
        while True:
            due = time.perf_counter() + INTERVAL_S
            gevent.sleep(INTERVAL_S)
            late_ms = (time.perf_counter() - max(due, self._polled_at)) * 1000
            runner = environment.runner
            if runner is not None and runner.state in (STATE_SPAWNING, STATE_RUNNING):
                self.latencies.add(max(late_ms, 0.0))

    def take(self) -> dict[str, Any]:
        """Returns the samples since the last call and starts afresh (a worker's report)."""
        snapshot = self.latencies.to_dict()
        self.latencies = Latencies()
        return snapshot

    def merge(self, snapshot: dict[str, Any] | None) -> None:
        if snapshot:
            self.latencies.merge(snapshot)
