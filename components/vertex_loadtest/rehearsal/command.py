"""``vertex-loadtest demo`` and ``vertex-loadtest emulator``: the local rehearsal's command line."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = subparsers.add_parser(
        "demo", help="rehearse the reference pipeline on this machine: emulators, local model, kfp.local"
    )
    demo.add_argument("--output-dir", default="demo-output", help="where reports go (default: demo-output)")
    demo.add_argument(
        "--slo",
        action="append",
        metavar="EXPR",
        help="an SLO expression, repeatable (default: the pipeline's); try 'p95 < 1ms'",
    )
    demo.add_argument("--fail-deploy", action="store_true", help="make the model deployment fail")
    demo.add_argument("--keep-on-success", action="store_true", help="keep the endpoint when the gate passes")
    demo.add_argument("--run-time", default="20s", help="length of the load test (default: 20s)")
    demo.add_argument("--users", type=int, default=10, help="concurrent Locust users (default: 10)")
    demo.add_argument(
        "--verbose",
        action="store_true",
        help="show every task's log here (default: one line per task; the rest goes to OUTPUT_DIR/demo.log)",
    )
    demo.set_defaults(handler=_demo)

    emulator = subparsers.add_parser(
        "emulator", help="serve the local Vertex AI emulator on 127.0.0.1 until interrupted (Ctrl-C)"
    )
    emulator.add_argument(
        "--port", type=int, default=8090, help="TCP port on 127.0.0.1 (default: 8090; 0 = any)"
    )
    emulator.add_argument(
        "--operation-seconds", type=float, default=0.0, help="how long each long-running operation takes"
    )
    emulator.add_argument(
        "--operation-seconds-for",
        action="append",
        metavar="KIND=SECONDS",
        help="per-kind duration, e.g. deployModel=5 (repeatable)",
    )
    emulator.set_defaults(handler=_emulator)


def _demo(args: argparse.Namespace) -> int:
    from vertex_loadtest.rehearsal.demo import run_demo

    return run_demo(args)


def _emulator(args: argparse.Namespace) -> int:
    from vertex_loadtest.rehearsal.vertex_emulator import serve

    return serve(args)
