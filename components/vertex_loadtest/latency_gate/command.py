"""``vertex-loadtest gate``: judge a load test's stats.json against SLO expressions.

Exit codes: 0 the gate passed, 1 an SLO was breached or the run is inconclusive (or failed a
no-vacuous-pass rule), 2 bad input (a malformed expression, a missing stats file, ...).
"""

from __future__ import annotations

import argparse
import sys

EXIT_PASSED, EXIT_FAILED = 0, 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "gate",
        help="judge a load test's stats.json against SLO expressions (exit 0 pass, 1 fail, 2 bad input)",
        description=(
            "Judge a load test's stats.json against SLO expressions such as 'p95 < 200ms', "
            "'error_rate < 1%', 'rps >= 50', '\"POST :predict\": p99 <= 1.5s' or 'p95 < baseline * 1.1'. "
            "Prints the Markdown "
            "verdict. Exit codes: 0 pass, 1 breach or inconclusive, 2 bad input."
        ),
    )
    parser.add_argument(
        "--stats",
        required=True,
        metavar="PATH",
        help="the load test's stats.json (or the directory holding it)",
    )
    parser.add_argument(
        "--slo",
        required=True,
        action="append",
        metavar="EXPR",
        help="an SLO expression; repeat for several (all must hold)",
    )
    parser.add_argument(
        "--baseline",
        metavar="PATH",
        help="a baseline stats.json (e.g. the last release's) for 'baseline' SLOs",
    )
    parser.add_argument(
        "--allow-incomplete", action="store_true", help="judge a run that stopped early instead of failing it"
    )
    parser.add_argument(
        "--allow-inconclusive",
        action="store_true",
        help="judge a run with a saturated generator, a missed target rate or too few requests (else: fail)",
    )
    parser.add_argument(
        "--min-requests",
        type=int,
        default=None,
        metavar="N",
        help="fewer requests make the run inconclusive (default: 100)",
    )
    parser.add_argument("--verdict", metavar="PATH", help="also write the Markdown verdict to this file")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from vertex_loadtest.latency_gate import render
    from vertex_loadtest.latency_gate.gate import run_gate
    from vertex_loadtest.latency_gate.verdict import DEFAULT_MIN_REQUESTS

    verdict = run_gate(
        args.stats,
        args.slo,
        args.baseline,
        allow_incomplete=args.allow_incomplete,
        allow_inconclusive=args.allow_inconclusive,
        min_requests=DEFAULT_MIN_REQUESTS if args.min_requests is None else args.min_requests,
        verdict_path=args.verdict,
    )
    sys.stdout.write(render.markdown(verdict))
    return EXIT_PASSED if verdict.passed else EXIT_FAILED
