"""The Locust process tree of a run, supervised from the component's own process: started in its own
session with the signal dispositions our stop relies on, SIGTERM (what Vertex sends on cancel) and
SIGINT forwarded as SIGINT (Locust then still writes its HTML report), a hard deadline, and the peak
CPU of the busiest Locust process.
"""

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from typing import Any

from vertex_loadtest.stats import StopReason

logger = logging.getLogger(__name__)

#: After SIGINT, how long Locust gets to write its reports before it is killed.
INTERRUPT_GRACE_S = 7.0
#: The signals that stop a run (and are forwarded to Locust as SIGINT).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class LocustProcess:
    """Runs one Locust command to its end; see the module docstring."""

    def __init__(self, command: list[str], env: dict[str, str], deadline_s: float):
        self.command, self.env, self.deadline_s = command, env, deadline_s
        self.returncode: int | None = None
        self.ended_at = 0.0
        self.cpu_peak_percent = 0.0
        self.killed = False  # Locust ignored the interrupt and was killed
        self.last_lines: deque[str] = deque(maxlen=40)
        self._interrupted: StopReason | None = None

    def run(self) -> StopReason:
        """Runs Locust to the end; returns why it stopped."""
        # Handlers first: a caught signal starts as SIG_DFL in the child, whereas an ignored one stays
        # ignored. A background job of a non-interactive shell starts with SIGINT ignored; Locust would
        # inherit that and never stop on our SIGINT.
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,  # a signal to our group must not reach Locust unconverted
            )
            reader = threading.Thread(target=self._relay_output, args=(process,), daemon=True)
            reader.start()
            self._supervise(process)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        reader.join(5)
        self.returncode = process.returncode
        self.ended_at = time.time()
        return self._interrupted or StopReason.RUN_TIME

    def _on_signal(self, signum: int, _frame: object) -> None:
        logger.warning(
            "received %s: stopping the load test and writing its reports", signal.Signals(signum).name
        )
        self._interrupted = self._interrupted or StopReason.INTERRUPTED

    def _supervise(self, process: subprocess.Popen[str]) -> None:
        import psutil

        started = time.monotonic()
        interrupted_at: float | None = None
        sampler = CpuSampler(psutil.Process(process.pid))
        while process.poll() is None:
            time.sleep(0.5)
            sampler.sample()
            if self._interrupted is None and time.monotonic() - started > self.deadline_s:
                logger.error("load test passed its hard deadline of %.0fs: stopping it", self.deadline_s)
                self._interrupted = StopReason.DEADLINE
            if self._interrupted and interrupted_at is None:
                interrupted_at = time.monotonic()
                _signal_quietly(process.pid, signal.SIGINT)  # SIGINT, not SIGTERM: Locust then writes HTML
            if interrupted_at is not None and time.monotonic() - interrupted_at > INTERRUPT_GRACE_S:
                logger.error(
                    "Locust did not stop within %.0fs of the interrupt: killing it", INTERRUPT_GRACE_S
                )
                self.killed = True
                _killpg_quietly(process.pid)
                process.wait()
        self.cpu_peak_percent = sampler.peak
        if self._interrupted is None:
            _killpg_quietly(process.pid)  # stray workers, if any

    def _relay_output(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        with process.stdout:  # closed at EOF, so the pipe does not outlive the run
            for line in process.stdout:
                self.last_lines.append(line.rstrip())
                sys.stderr.write(line)


class CpuSampler:
    """Peak CPU of the busiest Locust process, averaged over the last few samples."""

    WINDOW = 4

    def __init__(self, root: Any):
        self.root = root
        self.history: dict[int, deque[float]] = {}
        self.processes: dict[int, Any] = {}
        self.peak = 0.0

    def sample(self) -> None:
        import psutil

        try:
            tree = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        for process in tree:
            known = self.processes.setdefault(process.pid, process)
            try:
                percent = known.cpu_percent(None)
            except psutil.Error:
                continue
            window = self.history.setdefault(process.pid, deque(maxlen=self.WINDOW))
            window.append(percent)
            if len(window) == self.WINDOW:
                self.peak = max(self.peak, sum(window) / len(window))


def _signal_quietly(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _killpg_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
