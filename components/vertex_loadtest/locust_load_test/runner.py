"""The load-test runtime: what ``LocustLoadTestOp`` and ``vertex-loadtest load-test`` call.

It runs in the component's own process and never imports locust or gevent there (they monkey-patch
sockets and break the Google clients): it resolves the target, fetches and checks the locustfile and
payloads, then runs the ``locust`` CLI as a child process with our plugin ahead of the locustfile.
While the child runs it samples the generator's CPU, enforces a hard deadline, and turns SIGTERM
(what Vertex sends on cancel) into SIGINT so Locust still writes its HTML report. At the end it
writes ``report.html``, ``stats.json`` and Locust's CSVs to the output directory.
"""

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vertex_loadtest.durations import parse_duration
from vertex_loadtest.errors import BadInput
from vertex_loadtest.locust_load_test import payloads as payload_files
from vertex_loadtest.locust_load_test import results, run_config, sources, target
from vertex_loadtest.stats import write_stats

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
PLUGIN = PACKAGE_DIR / "plugin.py"
BUILTIN_LOCUSTFILE = PACKAGE_DIR / "builtin_locustfile.py"
REPORT_FILE = "report.html"
CSV_PREFIX = "locust"
#: Time for Locust to start, stop users and write its reports, beyond run time and stop timeout.
DEADLINE_GRACE_S = 30.0
#: After SIGINT, how long Locust gets to write its reports before it is killed.
INTERRUPT_GRACE_S = 7.0
#: How long the master waits for its workers (Locust's default, 0, waits forever).
EXPECT_WORKERS_MAX_WAIT_S = 30


@dataclass(frozen=True)
class LoadTest:
    """What to run. Exactly one of ``host`` and ``endpoint`` names the target."""

    host: str = ""
    endpoint: str = ""
    locustfile: str = ""  # local path, /gcs/ path or gs:// URI; empty: the built-in user
    locustfile_sha256: str = ""
    payloads: str = ""  # JSONL: local path, /gcs/ path or gs:// URI
    instances: str = ""  # inline JSON: a list of instances or a request body
    users: int = 10
    spawn_rate: float = 10.0
    run_time: str = "1m"
    processes: int = 0  # 0: every core
    request_timeout_s: float = 60.0
    target_rps: float = 0.0  # 0: closed model, as fast as the users go
    locust_options: Sequence[str] = field(default_factory=tuple)
    auth: str = "auto"
    stop_timeout_s: float = 10.0
    progress_interval_s: float = 5.0


@dataclass
class Outcome:
    """What a run produced."""

    stats: dict[str, Any]
    report: Path
    stats_file: Path
    output_dir: Path

    @property
    def complete(self) -> bool:
        return bool(self.stats["run"]["complete"])


class LoadTestAborted(RuntimeError):
    """The run was cut short (SIGTERM or deadline); its reports were written and marked incomplete."""


def run_load_test(test: LoadTest, output_dir: str | Path) -> Outcome:
    """Runs one Locust load test and writes its reports.

    Args:
        test: The target, locustfile, payloads and load shape.
        output_dir: Directory for ``report.html``, ``stats.json`` and the ``locust_*.csv`` files.

    Returns:
        The outcome; ``outcome.complete`` is False when the run was interrupted or hit its deadline.

    Raises:
        BadInput: an input is wrong (the message names it).
    """
    run_time_s = parse_duration(test.run_time)
    _check_numbers(test)
    resolved = target.resolve(test.host, test.endpoint, test.auth)
    processes = test.processes or os.cpu_count() or 1
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vertex-loadtest-") as work:
        workdir = Path(work)
        locustfile = _prepare_locustfile(test, workdir)
        config = {
            "predict_path": resolved.predict_path,
            "anonymous": resolved.anonymous,
            "payloads": _load_payloads(test, workdir),
            "request_timeout_s": test.request_timeout_s,
            "target_rps": test.target_rps or None,
            "progress_interval_s": test.progress_interval_s,
            "dump_path": str(workdir / "dump.json"),
            "expect_workers": processes if processes > 1 else 0,
            "expect_workers_max_wait_s": EXPECT_WORKERS_MAX_WAIT_S,
        }
        env = {**os.environ, **run_config.write(config, workdir / "run-config.json")}
        command = _locust_command(test, resolved.host, locustfile, run_time_s, processes, output)
        logger.info(
            "load test: %d users (spawn %g/s) for %ds on %d process(es) against %s%s",
            test.users,
            test.spawn_rate,
            run_time_s,
            processes,
            resolved.host,
            resolved.predict_path,
        )
        child = _Child(command, env, deadline_s=run_time_s + test.stop_timeout_s + DEADLINE_GRACE_S)
        stop_reason = child.run()
        dump_path = workdir / "dump.json"
        if not dump_path.exists():
            child.raise_for_missing_stats(locustfile)
        dump = json.loads(dump_path.read_text(encoding="utf-8"))
    stats = results.build_stats(
        dump,
        run={
            "ended_at": child.ended_at,
            "run_time_s": run_time_s,
            "stop_reason": stop_reason,
            "complete": stop_reason == "run-time" and child.returncode == 0,
        },
        load={
            "users": test.users,
            "spawn_rate": test.spawn_rate,
            "processes": processes,
            "target_rps": test.target_rps,
        },
        target=resolved.as_dict(),
        cpu_peak_percent=child.cpu_peak_percent,
    )
    stats_file = write_stats(stats, output)
    print(results.summary(stats), flush=True)
    return Outcome(stats, output / REPORT_FILE, stats_file, output)


def _check_numbers(test: LoadTest) -> None:
    checks = [
        ("users", test.users, test.users >= 1, "at least 1"),
        ("spawn_rate", test.spawn_rate, test.spawn_rate > 0, "above 0"),
        ("processes", test.processes, test.processes >= 0, "0 (every core) or more"),
        (
            "request_timeout",
            test.request_timeout_s,
            0 < test.request_timeout_s <= 600,
            "between 0 and 600 seconds",
        ),
        ("target_rps", test.target_rps, test.target_rps >= 0, "0 (no target) or more"),
    ]
    for name, value, ok, expected in checks:
        if not ok:
            raise BadInput(f"{name} {value!r} must be {expected}")


def _prepare_locustfile(test: LoadTest, workdir: Path) -> Path:
    if not test.locustfile:
        if test.locustfile_sha256:
            raise BadInput("locustfile_sha256 was given without a locustfile")
        return BUILTIN_LOCUSTFILE
    # Locust imports the file as a module named after it: keep a valid module name.
    path = sources.fetch(test.locustfile, workdir / "team_locustfile.py", "locustfile")
    if test.locustfile_sha256:
        sources.verify_sha256(path, test.locustfile_sha256, test.locustfile)
    try:
        compile(path.read_bytes(), test.locustfile, "exec")
    except SyntaxError as error:
        raise BadInput(
            f"locustfile {test.locustfile} has a syntax error at line {error.lineno}: {error.msg}"
        ) from None
    except ValueError as error:
        raise BadInput(f"locustfile {test.locustfile} is not Python source: {error}") from None
    return path


def _load_payloads(test: LoadTest, workdir: Path) -> list[Any] | None:
    if test.payloads and test.instances:
        raise BadInput("give payloads (a JSONL file) or instances (inline JSON), not both")
    if test.payloads:
        path = sources.fetch(test.payloads, workdir / "payloads.jsonl", "payloads")
        return payload_files.load_jsonl(path, test.payloads)
    if test.instances:
        return payload_files.parse_inline(test.instances)
    return None


def _locust_command(
    test: LoadTest, host: str, locustfile: Path, run_time_s: int, processes: int, output: Path
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        f"{PLUGIN},{locustfile}",
        "--headless",
        "--only-summary",
        "--host",
        host,
        "--users",
        str(test.users),
        "--spawn-rate",
        f"{test.spawn_rate:g}",
        "--run-time",
        f"{run_time_s}s",
        "--stop-timeout",
        f"{test.stop_timeout_s:g}",
        "--html",
        str(output / REPORT_FILE),
        "--csv",
        str(output / CSV_PREFIX),
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "INFO",
    ]
    if processes > 1:
        command += [
            "--processes",
            str(processes),
            "--expect-workers-max-wait",
            str(EXPECT_WORKERS_MAX_WAIT_S),
        ]
    return command + list(test.locust_options)


class _Child:
    """The Locust process tree: runs it, forwards SIGTERM as SIGINT, enforces the deadline, samples CPU."""

    def __init__(self, command: list[str], env: dict[str, str], deadline_s: float):
        self.command, self.env, self.deadline_s = command, env, deadline_s
        self.returncode: int | None = None
        self.ended_at = 0.0
        self.cpu_peak_percent = 0.0
        self.last_lines: deque[str] = deque(maxlen=40)
        self._interrupted: str | None = None

    def run(self) -> str:
        """Runs Locust to the end; returns the stop reason (``vertex_loadtest.stats.STOP_REASONS``)."""
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
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._supervise(process)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        reader.join(5)
        self.returncode = process.returncode
        self.ended_at = time.time()
        return self._interrupted or "run-time"

    def _on_signal(self, signum: int, _frame: object) -> None:
        logger.warning(
            "received %s: stopping the load test and writing its reports", signal.Signals(signum).name
        )
        self._interrupted = self._interrupted or "interrupted"

    def _supervise(self, process: subprocess.Popen) -> None:
        import psutil

        started = time.monotonic()
        interrupted_at: float | None = None
        sampler = _CpuSampler(psutil.Process(process.pid))
        while process.poll() is None:
            time.sleep(0.5)
            sampler.sample()
            if self._interrupted is None and time.monotonic() - started > self.deadline_s:
                logger.error("load test passed its hard deadline of %.0fs: stopping it", self.deadline_s)
                self._interrupted = "deadline"
            if self._interrupted and interrupted_at is None:
                interrupted_at = time.monotonic()
                _signal_quietly(process.pid, signal.SIGINT)  # SIGINT, not SIGTERM: Locust then writes HTML
            if interrupted_at is not None and time.monotonic() - interrupted_at > INTERRUPT_GRACE_S:
                logger.error(
                    "Locust did not stop within %.0fs of the interrupt: killing it", INTERRUPT_GRACE_S
                )
                _killpg_quietly(process.pid)
                process.wait()
        self.cpu_peak_percent = sampler.peak
        if self._interrupted is None:
            _killpg_quietly(process.pid)  # stray workers, if any

    def _relay_output(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.last_lines.append(line.rstrip())
            sys.stderr.write(line)

    def raise_for_missing_stats(self, locustfile: Path) -> None:
        output = "\n".join(self.last_lines)
        if "No User class found" in output:
            raise BadInput(
                f"locustfile {locustfile.name} defines no User class: subclass "
                "vertex_loadtest.locust_load_test.vertex_user.VertexEndpointUser (or locust.User)"
            )
        raise RuntimeError(
            f"Locust exited with code {self.returncode} without writing its statistics "
            f"(an infrastructure failure, not an SLO verdict). Last output:\n{output}"
        )


class _CpuSampler:
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
