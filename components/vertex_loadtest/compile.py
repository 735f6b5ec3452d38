"""``make compile`` / ``vertex-loadtest compile``: write every generated spec (specs are generated,
never edited: ``docs/architecture.md``).

Each spec is written next to the Python that defines it; a test fails when a checked-in spec differs
from a fresh compile.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from kfp import compiler

PACKAGE_DIR = Path(__file__).resolve().parent

#: (module, attribute, spec file relative to the package): every spec the project publishes.
SPECS = (
    ("vertex_loadtest.locust_load_test.component", "LocustLoadTestOp", "locust_load_test/component.yaml"),
    ("vertex_loadtest.latency_gate.component", "LatencyGateOp", "latency_gate/component.yaml"),
    ("vertex_loadtest.endpoint_cleanup.component", "EndpointCleanupOp", "endpoint_cleanup/component.yaml"),
    ("vertex_loadtest.pipelines.deploy_and_test", "deploy_and_test", "pipelines/deploy_and_test.yaml"),
    ("vertex_loadtest.pipelines.sweep_orphans", "sweep_orphans", "pipelines/sweep_orphans.yaml"),
)


def compile_all(output_root: Path = PACKAGE_DIR) -> list[Path]:
    """Compiles every spec under ``output_root`` (mirroring the package layout).

    Args:
        output_root: Directory standing for the package root; the package itself by default.

    Returns:
        The paths written.
    """
    written = []
    for module_name, attribute, relative_path in SPECS:
        target = output_root / relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        pipeline_func = getattr(importlib.import_module(module_name), attribute)
        compiler.Compiler().compile(pipeline_func=pipeline_func, package_path=str(target))
        written.append(target)
    return written


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("compile", help="write every component.yaml and the pipeline template")
    parser.add_argument(
        "--output-root",
        type=Path,
        default=PACKAGE_DIR,
        help="package root to write under (default: in place)",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    for path in compile_all(args.output_root):
        print(path)
    return 0
