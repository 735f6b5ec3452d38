"""``vertex-loadtest demo`` and ``vertex-loadtest emulator``: the local rehearsal's command line."""

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo", help="rehearse the reference pipeline on this machine: emulators, local model, kfp.local"
    )
    demo.add_argument("--output-dir", default="demo-output", help="where reports go (default: demo-output)")
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from vertex_loadtest.rehearsal.demo import run_demo

    return run_demo(args)
