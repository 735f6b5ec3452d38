"""``vertex-loadtest load-test``: the load-test runtime from the command line (a documented interface)."""

from __future__ import annotations

import argparse
import shlex

from vertex_loadtest.errors import BadInput
from vertex_loadtest.locust_load_test.run_config import DEFAULT_ABORT_GRACE, DEFAULT_REQUEST_TIMEOUT_S

EXIT_ABORTED = 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "load-test",
        help="run a Locust load test against a Vertex AI endpoint or any HTTP host",
        description="Writes DIR/report.html, DIR/stats.json and Locust's CSVs; exits 0 when the run "
        "completed (failed requests are data), 1 when it was aborted, 2 on bad input.",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--host", help="target URL, e.g. http://127.0.0.1:8080 (a path is the predict path)")
    target.add_argument(
        "--endpoint", help="Vertex AI endpoint resource name projects/P/locations/L/endpoints/E"
    )
    parser.add_argument(
        "--locustfile", default="", help="local path or gs:// URI (default: the built-in user)"
    )
    parser.add_argument(
        "--locustfile-sha256", default="", help="refuse to run a locustfile with another digest"
    )
    parser.add_argument("--payloads", default="", help="JSONL of request bodies or instances (path or gs://)")
    parser.add_argument("--instances", default="", help='inline JSON instances, e.g. \'[{"text": "hi"}]\'')
    parser.add_argument("--users", type=int, default=10, help="concurrent users (default 10)")
    parser.add_argument(
        "--spawn-rate", type=float, default=10.0, help="users started per second (default 10)"
    )
    parser.add_argument("--run-time", default="1m", help="30s, 5m, 1h30m (default 1m)")
    parser.add_argument("--processes", type=int, default=0, help="Locust processes (default: every core)")
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=DEFAULT_REQUEST_TIMEOUT_S,
        help=f"seconds per request (default {DEFAULT_REQUEST_TIMEOUT_S:g})",
    )
    parser.add_argument("--target-rps", type=float, default=0.0, help="pace to this total rps (open model)")
    parser.add_argument(
        "--auth",
        choices=("auto", "google", "none"),
        default="auto",
        help="bearer token from Google ADC; auto: none for loopback hosts",
    )
    parser.add_argument("--locust-options", default="", help="extra Locust CLI options, e.g. '--reset-stats'")
    parser.add_argument(
        "--abort-on-breach",
        action="append",
        default=[],
        metavar="SLO",
        help="stop early once this SLO (gate syntax, e.g. 'p95 < 500ms') stays breached; repeatable",
    )
    parser.add_argument(
        "--abort-grace",
        default=DEFAULT_ABORT_GRACE,
        help=f"no early abort before this (default {DEFAULT_ABORT_GRACE})",
    )
    parser.add_argument("--output-dir", default="load-test-output", help="where reports go")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from vertex_loadtest.locust_load_test.runner import LoadTest, run_load_test

    try:
        locust_options = tuple(shlex.split(args.locust_options))
    except ValueError as error:
        raise BadInput(f"locust options {args.locust_options!r} do not parse: {error}") from None
    outcome = run_load_test(
        LoadTest(
            host=args.host or "",
            endpoint=args.endpoint or "",
            locustfile=args.locustfile,
            locustfile_sha256=args.locustfile_sha256,
            payloads=args.payloads,
            instances=args.instances,
            users=args.users,
            spawn_rate=args.spawn_rate,
            run_time=args.run_time,
            processes=args.processes,
            request_timeout_s=args.request_timeout,
            target_rps=args.target_rps,
            auth=args.auth,
            locust_options=locust_options,
            abort_on_breach=tuple(args.abort_on_breach),
            abort_grace=args.abort_grace,
        ),
        args.output_dir,
    )
    if outcome is None:  # a worker replica (CLUSTER_SPEC): the master reports
        return 0
    print(f"report: {outcome.report}\nstats: {outcome.stats_file}")
    return 0 if outcome.complete else EXIT_ABORTED
