"""Event-loop lag of a Locust process: how late a greenlet wakes from a fixed sleep.

Every user of a Locust process shares one gevent loop. While one greenlet computes (a locustfile
parsing a big response, stats reporting, garbage collection), a response that has already arrived
waits, and its request's clock keeps running: the generator measures itself, not the endpoint. A
greenlet that sleeps ``INTERVAL_S`` again and again and records how late it woke measures that wait.

Two corrections keep it to the lag this process causes itself:

- An idle loop sleeps in ``epoll_wait``, whose timeout is whole milliseconds, so a timer fires up to
  1 ms late with nothing else to do, a delay no response suffers (a response wakes the poll at once).
  Two libev watchers stamp when the loop starts polling (a prepare watcher, run last) and when the
  poll returns (a check watcher, run first): when the loop was polling at the due time, lateness
  counts from the poll's return; otherwise the loop was busy, and it counts from the due time.
- On a machine shared with other work, the operating system also holds the process back now and
  then; that is not the generator's doing, and no setting of the load test changes it. Lateness is
  capped at the CPU time the loop's thread used since the probe went to sleep: a loop that computed
  for 15 ms used 15 ms of CPU; a process that waited for a core used next to none.

The lag is recorded in a 0.2% histogram (``recorder.Latencies``) while users run, in every process
that runs users (a distributed master runs none, so it cannot delay a request); workers send theirs
to the master with their stats reports, and ``stats.json`` shows ``generator.loop_lag_ms``.
Imported only inside Locust processes (it imports gevent).
"""

import time
from typing import Any

import gevent
from locust.runners import STATE_RUNNING, STATE_SPAWNING

from vertex_loadtest.locust_load_test.recorder import Latencies

#: How often the probe wakes: 100 times a second costs well under 1% of a core.
INTERVAL_S = 0.01
_FIRST, _LAST = 2, -2  # libev priorities (EV_MAXPRI, EV_MINPRI)


class LoopLag:
    """The lag samples of this process (and, on a master, those its workers sent)."""

    def __init__(self) -> None:
        self.latencies = Latencies()
        self._poll_started = self._poll_returned = 0.0

    def _on_prepare(self) -> None:
        self._poll_started = time.perf_counter()

    def _on_check(self) -> None:
        self._poll_returned = time.perf_counter()

    def probe(self, environment: Any) -> None:
        """Sleeps ``INTERVAL_S`` again and again, recording how late each wake-up was (runs forever)."""
        loop = gevent.get_hub().loop
        prepare, check = loop.prepare(priority=_LAST), loop.check(priority=_FIRST)
        prepare.start(self._on_prepare)
        check.start(self._on_check)
        while True:
            due, cpu_before = time.perf_counter() + INTERVAL_S, time.thread_time()
            gevent.sleep(INTERVAL_S)
            woke, cpu_used = time.perf_counter(), time.thread_time() - cpu_before
            polling_when_due = self._poll_started <= due <= self._poll_returned
            late_ms = min(woke - (self._poll_returned if polling_when_due else due), cpu_used) * 1000
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
