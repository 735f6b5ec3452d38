"""``vertex-loadtest``: one command line over the same runtime functions the components call.

Each subcommand lives beside the code it runs (``<package>/command.py`` with ``register(subparsers)``);
this module only dispatches, and imports nothing heavy, so ``vertex-loadtest gate`` never loads locust.
"""

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from vertex_loadtest._version import __version__
from vertex_loadtest.errors import BadInput, InfrastructureFailure

#: Modules whose ``register(subparsers)`` adds one or more subcommands.
COMMAND_MODULES = (
    "vertex_loadtest.locust_load_test.command",
    "vertex_loadtest.latency_gate.command",
    "vertex_loadtest.endpoint_cleanup.command",
    "vertex_loadtest.compile",
    "vertex_loadtest.rehearsal.command",
)

EXIT_INFRASTRUCTURE = 1
EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vertex-loadtest",
        description="Load-test, gate and clean up Vertex AI endpoints (the components' runtime).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except BadInput as error:
        print(f"vertex-loadtest {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except InfrastructureFailure as error:
        print(f"vertex-loadtest {args.command}: error: {error}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE


if __name__ == "__main__":
    sys.exit(main())
