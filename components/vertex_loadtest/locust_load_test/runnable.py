"""How much of the time a Locust process was runnable: on a CPU or waiting in the run queue for one
(Linux's ``/proc/PID/schedstat``). A generator that wants a whole core on a machine too busy to give it
one shows a low CPU share but measures its own queueing all the same. Pure Python; no locust import.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path


class RunnableSampler:
    """Peak runnable share (percent of wall time) of the busiest sampled process, averaged over the
    last ``WINDOW`` samples of each; 0 where ``/proc`` has no schedstat (not Linux)."""

    WINDOW = 4

    def __init__(self) -> None:
        self.peak = 0.0
        self._last: dict[int, tuple[float, float]] = {}  # pid -> (wall s, on-CPU + queued s)
        self._windows: dict[int, deque[float]] = {}

    def sample(self, pid: int) -> None:
        """Takes one sample of process ``pid``."""
        try:
            running_ns, waiting_ns = Path(f"/proc/{pid}/schedstat").read_text().split()[:2]
        except (OSError, ValueError):  # not Linux, or the process is gone
            return
        now, busy = time.monotonic(), (int(running_ns) + int(waiting_ns)) / 1e9
        last = self._last.get(pid)
        self._last[pid] = (now, busy)
        if last is None or now <= last[0]:
            return
        window = self._windows.setdefault(pid, deque(maxlen=self.WINDOW))
        window.append(100 * (busy - last[1]) / (now - last[0]))
        if len(window) == self.WINDOW:
            self.peak = max(self.peak, sum(window) / len(window))
