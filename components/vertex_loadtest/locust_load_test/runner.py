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
from html import escape
from pathlib import Path
from typing import Any

from vertex_loadtest import slo
from vertex_loadtest.durations import parse_duration
from vertex_loadtest.errors import BadInput
from vertex_loadtest.locust_load_test import cluster, results, sources, target
from vertex_loadtest.locust_load_test import payloads as payload_files
from vertex_loadtest.locust_load_test.run_config import (
    DEFAULT_ABORT_GRACE,
    DEFAULT_EXPECT_WORKERS_MAX_WAIT_S,
    DEFAULT_PROGRESS_INTERVAL_S,
    DEFAULT_REQUEST_TIMEOUT_S,
    RunConfig,
)
from vertex_loadtest.stats import StopReason, write_stats

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
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    target_rps: float = 0.0  # 0: closed model, as fast as the users go
    locust_options: Sequence[str] = field(default_factory=tuple)
    auth: str = "auto"
    stop_timeout_s: float = 10.0
    progress_interval_s: float = DEFAULT_PROGRESS_INTERVAL_S
    abort_on_breach: Sequence[str] = field(default_factory=tuple)  # SLOs that stop the run early
    abort_grace: str = DEFAULT_ABORT_GRACE  # no early abort before this much of the run
    expect_workers_max_wait_s: int = DEFAULT_EXPECT_WORKERS_MAX_WAIT_S  # a master's wait for its workers


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


def run_load_test(test: LoadTest, output_dir: str | Path, role: cluster.Role | None = None) -> Outcome | None:
    """Runs one Locust load test and writes its reports.

    On a single machine Locust runs one process per core. In a Vertex AI CustomJob (``CLUSTER_SPEC``)
    the ``workerpool0`` replica is the Locust master and writes the outputs; every other replica is a
    worker (itself one process per core) and writes nothing.

    Args:
        test: The target, locustfile, payloads and load shape.
        output_dir: Directory for ``report.html``, ``stats.json`` and the ``locust_*.csv`` files.
        role: This replica's part; default: from the ``CLUSTER_SPEC`` environment variable.

    Returns:
        The outcome (``outcome.complete`` is False when the run was interrupted, hit its deadline or
        lost a worker), or None on a worker replica.

    Raises:
        BadInput: an input is wrong (the message names it).
    """
    role = role or cluster.role_from_spec(os.environ.get(cluster.ENV))
    run_time_s = parse_duration(test.run_time)
    abort_grace_s = parse_duration(test.abort_grace, "abort grace")
    _check_numbers(test)
    if test.abort_on_breach:
        slo.parse_all(list(test.abort_on_breach), baseline_given=False)
    resolved = target.resolve(test.host, test.endpoint, test.auth)
    processes = test.processes or os.cpu_count() or 1
    # The Locust worker processes the master waits for: one per core here, or on every worker replica.
    if role.kind == "single":
        expected_workers = processes if processes > 1 else 0
    else:
        expected_workers = len(role.workers) * processes
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vertex-loadtest-") as work:
        workdir = Path(work)
        locustfile = _prepare_locustfile(test, workdir)
        config = RunConfig(
            predict_path=resolved.predict_path,
            anonymous=resolved.anonymous,
            payloads=_load_payloads(test, workdir),
            request_timeout_s=test.request_timeout_s,
            target_rps=test.target_rps or None,
            progress_interval_s=test.progress_interval_s,
            dump_path=str(workdir / "dump.json"),
            expect_workers=expected_workers,
            worker_replicas=role.workers,
            abort_on_breach=tuple(test.abort_on_breach),
            abort_grace_s=abort_grace_s,
            expect_workers_max_wait_s=test.expect_workers_max_wait_s,
        )
        env = {**os.environ, **config.write(workdir / "run-config.json")}
        command = _locust_command(
            test, resolved.host, locustfile, run_time_s, processes, output, role, expected_workers
        )
        logger.info(
            "load test (%s%s): %d users (spawn %g/s) for %ds, %d worker process(es), against %s%s",
            role.kind,
            f" {role.name}" if role.name else "",
            test.users,
            test.spawn_rate,
            run_time_s,
            expected_workers or 1,
            resolved.host,
            resolved.predict_path,
        )
        deadline_s = run_time_s + test.stop_timeout_s + DEADLINE_GRACE_S
        if role.kind != "single":
            deadline_s += test.expect_workers_max_wait_s
        child = _Child(command, env, deadline_s=deadline_s)
        stop_reason = child.run()
        if role.kind == "worker":
            logger.info(
                "worker %s finished (exit code %s); the master writes the outputs",
                role.name,
                child.returncode,
            )
            return None
        dump_path = workdir / "dump.json"
        if not dump_path.exists():
            child.raise_for_missing_stats(test, role)
        dump = json.loads(dump_path.read_text(encoding="utf-8"))
    lost_workers = sorted(worker for worker, state in dump.get("workers", {}).items() if state == "missing")
    if dump.get("aborted") and stop_reason is StopReason.RUN_TIME:
        stop_reason = StopReason.ABORTED_ON_BREACH
        _mark_report(
            output / REPORT_FILE, f"aborted early, SLO breached: {'; '.join(dump['aborted']['breached'])}"
        )
    elif lost_workers and stop_reason is StopReason.RUN_TIME:
        stop_reason = StopReason.WORKER_LOST
        _mark_report(
            output / REPORT_FILE, f"incomplete run: Locust worker(s) lost mid-test: {', '.join(lost_workers)}"
        )
    stats = results.build_stats(
        dump,
        run={
            "ended_at": child.ended_at,
            "run_time_s": run_time_s,
            "stop_reason": stop_reason,
            "complete": stop_reason is StopReason.RUN_TIME and child.returncode == 0,
            "lost_workers": lost_workers,
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
    test: LoadTest,
    host: str,
    locustfile: Path,
    run_time_s: int,
    processes: int,
    output: Path,
    role: cluster.Role,
    expected_workers: int,
) -> list[str]:
    command = [sys.executable, "-m", "locust", "-f", f"{PLUGIN},{locustfile}", "--host", host]
    if processes > 1 and role.kind != "master":
        command += ["--processes", str(processes)]
    if role.kind == "worker":
        return [
            *command,
            "--worker",
            "--master-host",
            role.master_host,
            "--master-port",
            str(role.master_port),
        ]
    if role.kind == "master":
        command += [
            "--master",
            "--master-bind-port",
            str(role.master_port),
            "--expect-workers",
            str(expected_workers),
        ]
    if expected_workers:
        command += ["--expect-workers-max-wait", str(test.expect_workers_max_wait_s)]
    command += [
        "--headless",
        "--only-summary",
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
    return command + list(test.locust_options)


def _mark_report(report: Path, notice: str) -> None:
    """Puts a notice at the top of Locust's HTML report (which has no place for one)."""
    if report.exists():
        html = report.read_text(encoding="utf-8")
        banner = (
            '<div style="background:#b00020;color:#fff;padding:12px;font:16px sans-serif">'
            f"vertex-loadtest: {escape(notice)}</div>"
        )
        report.write_text(html.replace("<body>", f"<body>{banner}", 1), encoding="utf-8")


class _Child:
    """The Locust process tree: runs it, forwards SIGTERM as SIGINT, enforces the deadline, samples CPU."""

    def __init__(self, command: list[str], env: dict[str, str], deadline_s: float):
        self.command, self.env, self.deadline_s = command, env, deadline_s
        self.returncode: int | None = None
        self.ended_at = 0.0
        self.cpu_peak_percent = 0.0
        self.last_lines: deque[str] = deque(maxlen=40)
        self._interrupted: StopReason | None = None

    def run(self) -> StopReason:
        """Runs Locust to the end; returns why it stopped."""
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
        sampler = _CpuSampler(psutil.Process(process.pid))
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

    def raise_for_missing_stats(self, test: LoadTest, role: cluster.Role) -> None:
        output = "\n".join(self.last_lines)
        if "Gave up waiting for workers" in output:
            replicas = ", ".join(role.workers) or "this machine's worker processes"
            raise RuntimeError(
                f"the Locust master gave up waiting for its workers after "
                f"{test.expect_workers_max_wait_s}s "
                f"(expected from: {replicas}): check that every worker replica started and can reach port "
                f"{role.master_port or 5557} of the master. Last output:\n{output}"
            )
        if "No User class found" in output:
            raise BadInput(
                f"locustfile {test.locustfile or '(built-in)'} defines no User class: subclass "
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
