"""The load-test runtime: what ``LocustLoadTestOp`` and ``vertex-loadtest load-test`` call.

It runs in the component's own process and never imports locust or gevent there (they monkey-patch
sockets and break the Google clients): it resolves the target, fetches and checks the locustfile and
payloads, then runs the ``locust`` CLI as a child process (``locust_process``) with our plugin ahead
of the locustfile; every Locust process gets ``VERTEX_AI_ENDPOINT_HOST`` and ``VERTEX_AI_ENDPOINT_PATH``.
At the end it writes ``report.html``, ``stats.json`` and Locust's CSVs to the output directory.
"""

import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from vertex_loadtest import slo
from vertex_loadtest.durations import parse_duration
from vertex_loadtest.errors import BadInput, InfrastructureFailure
from vertex_loadtest.locust_load_test import (
    cluster,
    locust_process,
    locustfile_check,
    results,
    sources,
    target,
)
from vertex_loadtest.locust_load_test import payloads as payload_files
from vertex_loadtest.locust_load_test.locust_process import LocustProcess
from vertex_loadtest.locust_load_test.run_config import (
    DEFAULT_ABORT_GRACE,
    DEFAULT_EXPECT_WORKERS_MAX_WAIT_S,
    DEFAULT_PROGRESS_INTERVAL_S,
    DEFAULT_REQUEST_TIMEOUT_S,
    RunConfig,
)
from vertex_loadtest.ports import free_port
from vertex_loadtest.stats import StopReason, write_stats

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
PLUGIN = PACKAGE_DIR / "plugin.py"
BUILTIN_LOCUSTFILE = PACKAGE_DIR / "builtin_locustfile.py"
REPORT_FILE = "report.html"
CSV_PREFIX = "locust"
#: Time for Locust to start, stop users and write its reports, beyond run time and stop timeout.
DEADLINE_GRACE_S = 30.0


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
    resolved = target.with_dedicated_dns(target.resolve(test.host, test.endpoint, test.auth))
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
            script=test.locustfile or "(built-in VertexEndpointUser)",
        )
        env = {**os.environ, **config.write(workdir / "run-config.json"), **resolved.environment()}
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
        child = LocustProcess(command, env, deadline_s=deadline_s)
        stop_reason = child.run()
        if role.kind == "worker":
            if child.returncode and not child.killed:
                _raise_if_locustfile_broken(test, locustfile, env)
            logger.info(
                "worker %s finished (exit code %s); the master writes the outputs",
                role.name,
                child.returncode,
            )
            return None
        dump_path = workdir / "dump.json"
        if not dump_path.exists():
            _raise_for_missing_stats(child, test, locustfile, env, role)
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
            "complete": stop_reason is StopReason.RUN_TIME
            and child.returncode == 0
            and bool(dump.get("final")),
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
    if not dump.get("final"):
        _raise_for_partial_stats(child, stats, stats_file, output / REPORT_FILE)
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
    locustfile_check.check_syntax(path, test.locustfile)
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
    if processes > 1 and role.kind == "single":
        # Locust's own master binds every interface on the fixed port 5557: a second run on the
        # machine would fail, and the port would be open to the network. Loopback, a free port.
        port = str(free_port())
        command += ["--master-bind-host", "127.0.0.1", "--master-bind-port", port, "--master-port", port]
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


def _raise_if_locustfile_broken(test: LoadTest, locustfile: Path, env: dict[str, str]) -> None:
    """Raises BadInput when Locust failed because the team's locustfile raises while being imported."""
    if test.locustfile:
        error = locustfile_check.import_failure(locustfile, test.locustfile, env)
        if error is not None:
            raise error


def _raise_for_missing_stats(
    child: LocustProcess, test: LoadTest, locustfile: Path, env: dict[str, str], role: cluster.Role
) -> None:
    _raise_if_locustfile_broken(test, locustfile, env)
    output = "\n".join(child.last_lines)
    if "Gave up waiting for workers" in output:
        replicas = ", ".join(role.workers) or "this machine's worker processes"
        raise InfrastructureFailure(
            f"the Locust master gave up waiting for its workers after {test.expect_workers_max_wait_s}s "
            f"(expected from: {replicas}): check that every worker replica started and can reach port "
            f"{role.master_port or 5557} of the master"
        )
    if "No User class found" in output:
        raise BadInput(
            f"locustfile {test.locustfile or '(built-in)'} defines no User class: subclass "
            "vertex_loadtest.locust_load_test.vertex_user.VertexEndpointUser (or locust.User)"
        )
    raise InfrastructureFailure(
        f"Locust {_how_it_ended(child)} without writing its statistics (an infrastructure failure, "
        "not an SLO verdict; its output is above)"
    )


def _raise_for_partial_stats(
    child: LocustProcess, stats: dict[str, Any], stats_file: Path, report: Path
) -> None:
    """Locust died before its final statistics: stats.json holds its last progress snapshot (incomplete)."""
    how = _how_it_ended(child)
    if not report.exists():
        report.write_text("<!doctype html><html><body></body></html>\n", encoding="utf-8")
        _mark_report(report, f"Locust {how} before writing its report; {stats_file.name} has its numbers")
    raise InfrastructureFailure(
        f"Locust {how} before the end of the run: {stats_file} holds what it measured until "
        f"{stats['run']['ended_at']}, marked incomplete"
    )


def _how_it_ended(child: LocustProcess) -> str:
    if child.killed:
        return f"was killed after ignoring the interrupt for {locust_process.INTERRUPT_GRACE_S:.0f}s"
    return f"exited with code {child.returncode}"
