"""What ``vertex-loadtest demo`` shows: one line per pipeline task (its name when it starts, its outcome
and time when it ends, and for a failed task the error it ended with), then whatever the demo itself
says. Everything else (kfp.local's executor logs, Locust, the emulators, the model server) goes to a
log file; ``--verbose`` shows it all instead, as it happens.
"""

import contextlib
import io
import os
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: kfp.local's own log lines around each task (``kfp/local/task_dispatcher.py``).
_STARTED = re.compile(r"Executing task '([^']+)'")
_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
#: The line a failed task's log ends with that says why: ``SomeError: message``.
_ERROR = re.compile(r"^\s*[\w.]*(Error|Exception|Failed|Aborted|Incomplete)\b.*:")


class TaskLines(io.TextIOBase):
    """A ``sys.stdout`` that writes everything to the log and one line per task to the screen."""

    def __init__(self, log: TextIO, screen: TextIO):
        self.log, self.screen = log, screen
        self._pending = ""
        self._started = 0.0
        self._open = False  # a task's line is on the screen, waiting for its outcome
        self._tail: deque[str] = deque(maxlen=60)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.log.write(text)
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._scan(_ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        self.log.flush()
        self.screen.flush()

    def say(self, text: str) -> None:
        """Shows ``text`` on the screen (and logs it)."""
        self.end_line()
        text = _ANSI.sub("", text)
        self.log.write(f"{text}\n")
        self.screen.write(f"{text}\n")
        self.flush()

    def end_line(self) -> None:
        if self._open:
            self.screen.write("\n")
            self._open = False

    def _scan(self, line: str) -> None:
        started, finished = _STARTED.search(line), _FINISHED.search(line)
        if started:
            self.end_line()
            self._started, self._open = time.monotonic(), True
            self._tail.clear()
            self.screen.write(f"  {started[1]:<22} ")
        elif finished:
            outcome = {"SUCCESS": "ok", "FAILURE": "FAILED"}.get(finished[2], finished[2])
            if not self._open:
                self.screen.write(f"  {finished[1]:<22} ")
            self.screen.write(f"{outcome} ({time.monotonic() - self._started:.1f}s)\n")
            self._open = False
            if finished[2] != "SUCCESS":
                reason = next((tail for tail in reversed(self._tail) if _ERROR.match(tail)), "")
                if reason:
                    self.screen.write(f"      {reason.strip()[:300]}\n")
        elif line.strip():
            self._tail.append(line)
        self.screen.flush()


@contextlib.contextmanager
def demo_console(log_path: Path, verbose: bool) -> Iterator[Callable[[str], None]]:
    """Routes the demo's output; yields the function that shows a line on the screen.

    Args:
        log_path: Where everything else goes (appended to).
        verbose: Show everything on the screen instead, and keep no log.
    """
    if verbose:
        yield lambda text: print(text, flush=True)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    screen = os.fdopen(os.dup(1), "w", encoding="utf-8")
    log = open(log_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed below
    console = TaskLines(log, screen)
    original_stdout = sys.stdout
    # Child processes (the model server, kfp.local's tasks) and logging write to fds 1 and 2 directly.
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = console
    try:
        yield console.say
    finally:
        console.end_line()
        console.flush()
        sys.stdout = original_stdout
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        log.close()
        screen.close()
